"""supervisord's configuration, rendered from the process table (deploy/processes.py).

Every process is restarted when it exits; one that exits within START_SECONDS of its
start is retried after 1, 2, 3 … seconds and, after START_RETRIES such tries, given up
on with a `gave up: … entered FATAL state` line in the supervisor's log (the output of
`make run`). On SIGTERM or SIGINT the supervisor stops the service's processes
together, then the bundled gateway, each with SIGTERM and, past its grace time,
SIGKILL to its whole process group: nothing of the stack outlives the supervisor's
stop."""

from __future__ import annotations

import getpass
import os
import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from deploy.processes import Process

START_SECONDS = 3
START_RETRIES = 5
SERVICE_GROUP = "service"
SIGNING_KEY_VARIABLE = "CHECKPOINT_SIGNING_KEY_FILE"
# supervisord stops groups one after the other, highest priority number first.
PROVIDER_PRIORITY, SERVICE_PRIORITY = 100, 200


def program_name(process: Process) -> str:
    """The name supervisorctl and the XML-RPC interface know the process by."""
    return process.name if process.provider else f"{SERVICE_GROUP}:{process.name}"


def render(
    table: list[Process],
    *,
    run_dir: Path,
    root: Path,
    log_dir: Path | None,
    environment: dict[str, str],
    password: str,
    autostart: set[str] | None = None,
    signing_key_file: str = "",
) -> str:
    """`log_dir` None: every process writes to the supervisor's standard output.
    `autostart` None: every process starts; else only those named (the others wait
    for `supervisorctl start`). `password` guards the control socket (supervisorctl
    reads it from this same file). `signing_key_file`: the checkpoint signing key,
    named to the checkpointer alone (the supervisor's own environment, which every
    process inherits, must not hold it: `manage.py supervise` removes it)."""
    auth = {"username": "payouts", "password": password}
    sections: list[tuple[str, dict[str, str]]] = [
        (
            "supervisord",
            {
                "nodaemon": "true",
                "logfile": str((log_dir or run_dir) / "supervisord.log"),
                "logfile_maxbytes": "10MB",
                "logfile_backups": "1",
                "loglevel": "info",
                "pidfile": str(run_dir / "supervisord.pid"),
                "childlogdir": str(run_dir),
                "identifier": "payouts",
                # As root, name root, or supervisord warns that it dropped nothing.
                **({"user": getpass.getuser()} if os.geteuid() == 0 else {}),
            },
        ),
        (
            "unix_http_server",
            {"file": str(run_dir / "supervisor.sock"), "chmod": "0700", **auth},
        ),
        (
            "rpcinterface:supervisor",
            {
                "supervisor.rpcinterface_factory": (
                    "supervisor.rpcinterface:make_main_rpcinterface"
                )
            },
        ),
        (
            "supervisorctl",
            {"serverurl": f"unix://{run_dir / 'supervisor.sock'}", **auth},
        ),
    ]
    service = [p.name for p in table if not p.provider]
    for process in table:
        log = str(log_dir / f"{process.name}.log") if log_dir else "/dev/stdout"
        env = {**environment, "PROCESS_NAME": process.name}
        if process.signs_checkpoints and signing_key_file:
            env[SIGNING_KEY_VARIABLE] = signing_key_file
        options = {
            "command": shlex.join(process.command),
            "directory": str(root),
            "autostart": str(autostart is None or process.name in autostart).lower(),
            "autorestart": "true",
            "startsecs": str(START_SECONDS),
            "startretries": str(START_RETRIES),
            "stopsignal": "TERM",
            "stopwaitsecs": str(process.stop_seconds),
            # The signal to stop goes to the main process alone (Celery's warm
            # shutdown, gunicorn's graceful stop); SIGKILL, to the whole group.
            "stopasgroup": "false",
            "killasgroup": "true",
            "redirect_stderr": "true",
            "stdout_logfile": log,
            "stdout_logfile_maxbytes": "0",
            "stdout_logfile_backups": "0",
            "environment": ",".join(f'{k}="{v}"' for k, v in sorted(env.items())),
        }
        if process.provider:
            options["priority"] = str(PROVIDER_PRIORITY)
        sections.append((f"program:{process.name}", options))
    sections.append(
        (
            f"group:{SERVICE_GROUP}",
            {"programs": ",".join(service), "priority": str(SERVICE_PRIORITY)},
        )
    )
    return "\n".join(
        f"[{title}]\n" + "".join(f"{k}={_escape(v)}\n" for k, v in options.items())
        for title, options in sections
    )


def _escape(value: str) -> str:
    # supervisord expands %(name)s in every value.
    return value.replace("%", "%%")
