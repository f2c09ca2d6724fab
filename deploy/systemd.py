"""systemd units rendered from the process table (deploy/processes.py): one service
per process, all part of one target, with the restart and stop policy the supervisor
applies under `make run`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from deploy.processes import Process

TARGET = "payouts.target"
# The name of the signing key among the checkpointer's systemd credentials.
SIGNING_CREDENTIAL = "checkpoint-signing-key"


def unit_name(process: Process) -> str:
    return f"payouts-{process.name}.service"


def render_units(
    table: list[Process],
    *,
    root: Path,
    env_file: Path,
    user: str,
    signing_key_file: str = "",
) -> dict[str, str]:
    """File name -> contents, for /etc/systemd/system/. `signing_key_file`: the
    checkpoint signing key, handed to the checkpointer's unit alone as a credential
    (systemd reads it as root, so the file may be unreadable to `user`)."""
    units = {
        unit_name(p): _service(
            p,
            root=root,
            env_file=env_file,
            user=user,
            signing_key_file=signing_key_file if p.signs_checkpoints else "",
        )
        for p in table
    }
    units[TARGET] = (
        "[Unit]\n"
        "Description=Payout Ledger (every process)\n"
        f"Wants={' '.join(unit_name(p) for p in table)}\n"
        "\n[Install]\n"
        "WantedBy=multi-user.target\n"
    )
    return units


def _service(
    process: Process, *, root: Path, env_file: Path, user: str, signing_key_file: str
) -> str:
    credential = (
        f"LoadCredential={SIGNING_CREDENTIAL}:{signing_key_file.replace('%', '%%')}\n"
        # %d: this unit's credentials directory, private to it.
        f"Environment=CHECKPOINT_SIGNING_KEY_FILE=%d/{SIGNING_CREDENTIAL}\n"
        if signing_key_file
        else ""
    )
    return (
        "[Unit]\n"
        f"Description=Payout Ledger: {process.name}\n"
        f"PartOf={TARGET}\n"
        "After=network-online.target\n"
        "Wants=network-online.target\n"
        # Five quick deaths in a minute: give up, as the supervisor does.
        "StartLimitIntervalSec=60\n"
        "StartLimitBurst=5\n"
        "\n[Service]\n"
        "Type=simple\n"
        f"User={user}\n"
        f"WorkingDirectory={root}\n"
        f"EnvironmentFile={env_file}\n"
        f"Environment=PROCESS_NAME={process.name}\n"
        f"{credential}"
        f"ExecStart={' '.join(exec_arg(arg) for arg in process.command)}\n"
        "Restart=always\n"
        "RestartSec=1\n"
        # SIGTERM to the main process (warm or graceful stop), SIGKILL to whatever
        # of its cgroup is left after the grace time.
        "KillMode=mixed\n"
        "KillSignal=SIGTERM\n"
        f"TimeoutStopSec={process.stop_seconds}\n"
        "\n[Install]\n"
        f"WantedBy={TARGET}\n"
    )


def exec_arg(arg: str) -> str:
    """One ExecStart argument: systemd expands % specifiers and $VARIABLES."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if re.fullmatch(r"[\w@%$./:=,+-]+", arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
