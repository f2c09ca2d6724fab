"""manage.py export_systemd: the process table as systemd units."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from deploy.processes import processes
from deploy.systemd import TARGET, render_units


class Command(BaseCommand):
    help = "Write one systemd unit per process of this configuration, and a target."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", required=True, help="directory to write to")
        parser.add_argument(
            "--env-file",
            default=str(Path(settings.BASE_DIR) / ".env"),
            help="the EnvironmentFile holding the configuration and secrets",
        )
        parser.add_argument("--user", default=getpass.getuser())
        parser.add_argument(
            "--signing-key",
            default=settings.CHECKPOINT_SIGNING_KEY_FILE,
            help="the checkpoint signing key, given to the checkpointer unit alone as "
            "a systemd credential (default CHECKPOINT_SIGNING_KEY_FILE)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        output = Path(options["output"])
        output.mkdir(parents=True, exist_ok=True)
        units = render_units(
            processes(),
            root=Path(settings.BASE_DIR),
            env_file=Path(options["env_file"]),
            user=options["user"],
            signing_key_file=options["signing_key"],
        )
        for name, text in units.items():
            (output / name).write_text(text)
            self.stdout.write(str(output / name))
        self.stdout.write(
            f"install: cp {output}/payouts* /etc/systemd/system/ && "
            f"systemctl daemon-reload && systemctl enable --now {TARGET}"
        )
