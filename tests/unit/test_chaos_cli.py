"""The chaos harness's command line: the replay line it prints runs the same run."""

from __future__ import annotations

import shlex

from tools.chaos.cli import NOT_REPLAYED, build_parser, parse_args, replay_command

PREFIX = "make chaos CHAOS_ARGS="


def replayed_args(line: str) -> list[str]:
    assert line.startswith(PREFIX)
    return shlex.split(shlex.split(line.removeprefix(PREFIX))[0])


def replayed_values(argv: list[str]) -> dict[str, object]:
    args = vars(parse_args(argv))
    return {dest: value for dest, value in args.items() if dest not in NOT_REPLAYED}


def test_the_default_replay_line_puts_the_seed_first_and_failpoints_last() -> None:
    # given a run with every option at its default
    args = parse_args(["--seed", "7"])
    # when
    line = replay_command(args)
    # then
    assert line == PREFIX + shlex.quote(
        "--seed 7 --payouts 1000 --rate 8 --clients 4 --worker-kills 10 "
        "--broker-flushes 1 --redis-outages 1 --pg-restarts 1 --follower-kills 2 "
        "--gateway-windows 1 --webhook-kills 1 --receiver-outages 1 "
        "--receiver-fail-first 3 --recovery-seconds 60 --worker-concurrency 2 "
        "--stuck-after 20 --max-retries 3 --sweep-interval 5 "
        "--failpoints after_processing_started:0.01,after_gateway_call:0.01"
    )


def test_a_replay_line_parses_back_to_the_same_run() -> None:
    # given a run with every replayed option away from its default
    argv = [
        *("--seed", "3", "--payouts", "12", "--rate", "2.5", "--worker-kills", "1"),
        *("--broker-flushes", "3", "--redis-outages", "0", "--pg-restarts", "2"),
        *("--redis-outage-mode", "stall", "--follower-kills", "0"),
        *("--gateway-windows", "2", "--webhook-kills", "4", "--receiver-outages", "2"),
        *("--receiver-fail-first", "0", "--recovery-seconds", "1e-5"),
        *("--worker-concurrency", "5", "--max-retries", "0"),
        *("--clients", "2", "--gateway-latency-ms", "0", "--stuck-after", "3"),
        *("--sweep-interval", "0.5"),
        *("--failpoints", "after_gateway_call:0.5 it's"),
    ]
    # when
    replay = replayed_args(replay_command(parse_args(argv)))
    # then
    assert replayed_values(replay) == replayed_values(argv)
    assert replay_command(parse_args(replay)) == replay_command(parse_args(argv))


def test_what_the_seed_chooses_is_left_to_it_in_the_replay() -> None:
    # given
    argv = ["--seed", "1"]
    # when
    replay = replayed_args(replay_command(parse_args(argv)))
    # then
    assert "--redis-outage-mode" not in replay
    assert "--gateway-latency-ms" not in replay
    assert parse_args(replay).redis_outage_mode == ""
    assert parse_args(replay).gateway_latency_ms is None


def test_a_run_without_failpoints_is_replayed_without_them() -> None:
    # given
    argv = ["--seed", "1", "--failpoints", ""]
    # when
    replay = replayed_args(replay_command(parse_args(argv)))
    # then
    assert parse_args(replay).failpoints == ""


def test_every_option_left_out_of_the_replay_is_one_the_parser_has() -> None:
    # given
    dests = {action.dest for action in build_parser()[1]}
    # then a misspelt name cannot silently put an option back into the replay
    assert dests >= NOT_REPLAYED
