"""manage.py supervise: every process of the service under supervisord (`make run`)."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from deploy.processes import BIN, Process, processes
from deploy.supervisor import SIGNING_KEY_VARIABLE, render

if TYPE_CHECKING:
    from collections.abc import Mapping


class Command(BaseCommand):
    help = (
        "Run every process of the service under supervisord: each is restarted when "
        "it exits; Ctrl-C or SIGTERM stops them all gracefully."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--only",
            default="",
            help="comma-separated processes to start now; the others wait for "
            "`supervisorctl start NAME`",
        )
        parser.add_argument(
            "--print",
            action="store_true",
            dest="print_only",
            help="print the supervisord configuration and exit",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        table = processes()
        names = {p.name for p in table}
        only = {n.strip() for n in options["only"].split(",") if n.strip()}
        if only - names:
            raise CommandError(
                f"unknown process {', '.join(sorted(only - names))}; "
                f"this configuration has {', '.join(p.name for p in table)}"
            )
        run_dir = Path(settings.RUN_DIR)
        log_dir = Path(settings.PROCESS_LOG_DIR) if settings.PROCESS_LOG_DIR else None
        metrics_dir = Path(settings.PROMETHEUS_MULTIPROC_DIR)
        config = render(
            table,
            run_dir=run_dir,
            root=Path(settings.BASE_DIR),
            log_dir=log_dir,
            environment={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
            password=secrets.token_urlsafe(16),
            autostart=only or None,
            signing_key_file=settings.CHECKPOINT_SIGNING_KEY_FILE,
        )
        if options["print_only"]:
            self.stdout.write(config)
            return
        if log_dir:
            log_dir.mkdir(parents=True, exist_ok=True)
        # Counters of processes from an earlier run would be summed into /metrics.
        metrics_dir.mkdir(parents=True, exist_ok=True)
        for stale in metrics_dir.glob("*.db"):
            stale.unlink()
        path = run_dir / "supervisord.conf"
        # Whole or not at all (supervisorctl may read it while it is replaced), and
        # readable by its owner alone: it holds the control socket's password.
        draft = path.with_suffix(".draft")
        draft.unlink(missing_ok=True)
        draft.touch(mode=0o600)
        draft.write_text(config)
        draft.replace(path)
        self.stdout.write(_banner(table, path, log_dir))
        sys.stdout.flush()
        supervisord = str(BIN / "supervisord")
        # The supervisor takes this process's place: Ctrl-C and SIGTERM reach it.
        os.execve(
            supervisord,
            [supervisord, "--configuration", str(path)],
            supervisor_environment(os.environ),
        )


def supervisor_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """Every process inherits the supervisor's environment: the path of the signing
    key goes to the checkpointer alone, through its program section."""
    return {k: v for k, v in environ.items() if k != SIGNING_KEY_VARIABLE}


def _banner(table: list[Process], config: Path, log_dir: Path | None) -> str:
    host = "127.0.0.1" if settings.HOST in ("0.0.0.0", "::") else settings.HOST
    base = f"http://{host}:{settings.PORT}"
    lines = [
        f"API      {base}/api/v1/payouts/",
        f"Docs     {base}/api/v1/docs/",
        f"Admin    {base}/admin/",
    ]
    if settings.RUN_FAKE_GATEWAY:
        lines.append(
            f"Gateway  {settings.PAYMENT_GATEWAY['URL']}/charges (bundled fake)"
        )
    lines += [
        "Stack    "
        + (
            "PostgreSQL + Redis"
            if settings.IS_POSTGRES
            else "embedded (SQLite, file broker)"
        )
        + f", {settings.APP_ENV}",
        f"Processes {', '.join(p.name for p in table)} under supervisord "
        f"(`{BIN / 'supervisorctl'} -c {config} status`)",
        f"Logs     {log_dir or 'below'}; Ctrl-C stops everything",
    ]
    return "\n".join(lines)
