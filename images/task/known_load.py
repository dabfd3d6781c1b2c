"""Uses a known amount of CPU and memory, then exits: the yardstick of the metrics tests.

    python3 /app/known_load.py --cpu-seconds 3 --memory-mib 200

Touches every page of a --memory-mib buffer (so it is resident), then keeps one core busy until
the process has used --cpu-seconds of CPU, and prints what it used.
"""
import argparse
import resource
import time

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--cpu-seconds", type=float, default=3.0)
parser.add_argument("--memory-mib", type=int, default=200)
args = parser.parse_args()

buffer = bytearray(args.memory_mib * 2**20)
for offset in range(0, len(buffer), 4096):
    buffer[offset] = 1
while time.process_time() < args.cpu_seconds:
    sum(range(10_000))
usage = resource.getrusage(resource.RUSAGE_SELF)
print(f"known load: used {usage.ru_utime + usage.ru_stime:.2f} CPU-s, "
      f"peak resident {usage.ru_maxrss / 1024:.1f} MiB, held {args.memory_mib} MiB")
