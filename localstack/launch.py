"""Start MiniStack with the sandbox's patches applied.

Equivalent to ``python -m ministack`` (same environment variables: GATEWAY_PORT,
BIND_HOST, LOG_LEVEL, ...), except that the patches are installed first
(ecs_fidelity.py, then iam_fidelity.py on top of it, root_access.py,
durability.py and cfn_fidelity.py), and
that detached mode is refused: ``ministack -d`` re-execs a plain hypercorn
process, which would run without them.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cfn_fidelity  # noqa: E402
import ecs_fidelity  # noqa: E402
import durability  # noqa: E402
import iam_fidelity  # noqa: E402
import root_access  # noqa: E402


def main():
    if {"-d", "--detach"} & set(sys.argv[1:]):
        sys.exit("launch.py runs MiniStack in the foreground only: detached "
                 "mode would start it without the ECS fidelity patch.")
    try:
        ecs_fidelity.apply()
        iam_fidelity.apply()
        if iam_fidelity.auth_enabled():  # AWS_IAM_ENFORCED=false: any key may do anything, as documented
            root_access.apply()
        durability.apply()
        cfn_fidelity.apply()
    except RuntimeError as exc:
        sys.exit(f"ERROR: {exc}")
    from ministack.app import main as ministack_main

    ministack_main()


if __name__ == "__main__":
    main()
