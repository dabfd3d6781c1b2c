"""Settings from `.env` (created from `.env.example` on first use), overridable by the environment.

Compose reads the same `.env`, so ports, passwords and image names agree everywhere.
"""
from __future__ import annotations

import base64
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ValueError(f"{path}:{lineno}: expected NAME=value, found {line!r}")
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip().strip("'\"")
    return values


class SettingsError(ValueError):
    """A value in .env (or the environment) that cannot be used; the message names it."""


@dataclass(frozen=True)
class Settings:
    values: dict[str, str]

    def __getitem__(self, key: str) -> str:
        return self.values[key]

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, default)

    @property
    def project(self) -> str:
        return self.get("COMPOSE_PROJECT_NAME", "airflow-sandbox")

    @property
    def network(self) -> str:
        """The compose project's default network: the services', the node's and the ECS tasks'."""
        return f"{self.project}_default"

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.get('AIRFLOW_PORT', '8080')}"

    @property
    def aws_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.get('LOCALSTACK_PORT', '4566')}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.get('METRICS_PORT', '8125')}"

    @property
    def iam_enforced(self) -> bool:
        """AWS_IAM_ENFORCED: the emulator evaluates IAM (true, the default) or lets any key do anything."""
        value = self.get("AWS_IAM_ENFORCED", "true").strip().lower()
        if value not in ("true", "false"):
            raise SettingsError(f".env: AWS_IAM_ENFORCED={self.get('AWS_IAM_ENFORCED')!r}: expected true or false")
        return value == "true"

    @property
    def state_save_seconds(self) -> float:
        """AWS_STATE_SAVE_SECONDS: how often the emulator writes its changed state (0: only when it stops)."""
        raw = self.get("AWS_STATE_SAVE_SECONDS", "3").strip()
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if value < 0:
            raise SettingsError(f".env: AWS_STATE_SAVE_SECONDS={raw!r}: expected a number of seconds, 0 or more "
                                "(0: the state is written only when the emulator stops cleanly)")
        return value

    @property
    def root_keys(self) -> dict[str, str]:
        """The emulator's account-root key pair (boto3 keyword arguments): accepted from the host only."""
        from sandbox.core.root_keys import root_keys
        return root_keys(self.values)

    @property
    def admin(self) -> tuple[str, str]:
        return self.get("AIRFLOW_ADMIN_USER", "admin"), self.get("AIRFLOW_ADMIN_PASSWORD", "admin")


# Before secrets were generated, every checkout used this Fernet key. A checkout whose sandbox was
# made with it keeps it as a second, decrypt-only key, so its stored connections stay readable.
LEGACY_FERNET_KEY = "kTk5Sx3PWtgDZc2DbqcRFr-KbyJA8QDjQkCEddhPuqU="


_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # what AWS access key ids are made of


def generate_secrets(root: Path, values: dict[str, str]) -> None:
    """Fills AIRFLOW_FERNET_KEY, AIRFLOW_JWT_SECRET, the emulator's account-root key pair and Airflow's
    credentials token in `.env` where they are empty: per checkout, made once, never committed."""
    made = {}
    if not values.get("AIRFLOW_FERNET_KEY"):
        key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        made["AIRFLOW_FERNET_KEY"] = f"{key},{LEGACY_FERNET_KEY}" if (root / ".build" / "stack.json").exists() else key
    if not values.get("AIRFLOW_JWT_SECRET"):
        made["AIRFLOW_JWT_SECRET"] = secrets.token_urlsafe(32)
    if not values.get("SANDBOX_ROOT_ACCESS_KEY_ID") or not values.get("SANDBOX_ROOT_SECRET_ACCESS_KEY"):
        made["SANDBOX_ROOT_ACCESS_KEY_ID"] = "AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
        made["SANDBOX_ROOT_SECRET_ACCESS_KEY"] = secrets.token_urlsafe(30)
    if not values.get("SANDBOX_AIRFLOW_CREDENTIALS_TOKEN"):
        made["SANDBOX_AIRFLOW_CREDENTIALS_TOKEN"] = secrets.token_urlsafe(32)
    if not made:
        return
    env_file = root / ".env"
    lines = env_file.read_text().splitlines() if env_file.exists() else []
    for key, value in made.items():
        at = [i for i, line in enumerate(lines) if line.split("=", 1)[0].strip() == key]
        if at:
            lines[at[0]] = f"{key}={value}"
        else:
            lines.append(f"{key}={value}")
    env_file.write_text("\n".join(lines) + "\n")
    env_file.chmod(0o600)
    values.update(made)


def load_settings(root: Path = ROOT) -> Settings:
    env_file, example = root / ".env", root / ".env.example"
    if not env_file.exists() and example.exists():
        shutil.copyfile(example, env_file)
    values = read_env_file(example)
    values.update(read_env_file(env_file))
    generate_secrets(root, values)
    # The process environment wins, as it does for compose.
    values.update({k: v for k, v in os.environ.items() if k in values})
    return Settings(values)
