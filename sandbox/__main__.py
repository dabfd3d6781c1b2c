"""`python -m sandbox COMMAND`: what the Makefile targets run."""
from __future__ import annotations

import argparse
import sys

from sandbox import host, images, stack
from sandbox.config import ConfigError, load_config
from sandbox.settings import ROOT, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="set up the host, build images, start and seed the sandbox")
    sub.add_parser("down", help="stop the sandbox and remove its containers and volumes")
    sub.add_parser("status", help="show the services and their health")
    sub.add_parser("build", help="build the images only")
    sub.add_parser("host", help="install/start Docker and Compose v2 where missing")
    sub.add_parser("validate", help="validate sandbox.yaml")
    args = parser.parse_args(argv)
    settings = load_settings()
    try:
        if args.command == "validate":
            load_config(ROOT / "sandbox.yaml")
            print("sandbox.yaml: valid")
        elif args.command == "host":
            host.preflight()
        elif args.command == "build":
            host.preflight()
            images.build_all(settings)
        elif args.command == "up":
            seconds = stack.up(settings)
            print(stack.summary(settings))
            print(f"\n  make up took {seconds:.0f}s")
        elif args.command == "down":
            stack.down()
        elif args.command == "status":
            print(stack.summary(settings) if stack.is_up(settings) else
                  "The sandbox is not (fully) up:\n" + stack.summary(settings))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (host.HostError, images.ImageError, stack.StackError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
