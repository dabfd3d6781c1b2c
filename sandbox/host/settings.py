"""Settings from `.env` (created from `.env.example` on first use), overridable by the environment.

Compose reads the same `.env`, so ports, passwords and image names agree everywhere.
"""
from __future__ import annotations

import os
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
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.get('AIRFLOW_PORT', '8080')}"

    @property
    def aws_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.get('LOCALSTACK_PORT', '4566')}"

    @property
    def admin(self) -> tuple[str, str]:
        return self.get("AIRFLOW_ADMIN_USER", "admin"), self.get("AIRFLOW_ADMIN_PASSWORD", "admin")


def load_settings(root: Path = ROOT) -> Settings:
    env_file, example = root / ".env", root / ".env.example"
    if not env_file.exists() and example.exists():
        shutil.copyfile(example, env_file)
    values = read_env_file(example)
    values.update(read_env_file(env_file))
    # The process environment wins, as it does for compose.
    values.update({k: v for k, v in os.environ.items() if k in values})
    return Settings(values)
