"""The instance a team runs (deploy/dagster.postgres.yaml) against a real PostgreSQL server,
with the real daemon and two real code servers: nothing here is in-process.

- the configuration loads and validates (``dagster instance info`` and the instance loader);
- the daemon dequeues runs launched with ``dagster job launch`` (QueuedRunCoordinator); the
  webserver's side (``dagster job launch``) and the daemon reach the code location through
  two different code-server processes;
- the drift sensor, ticking in the daemon, requests a rollout that repairs a rule added by hand;
- a tick of the hourly schedule launches the analysis of the hour that ended before it;
- a 24-hour asset backfill is one run (BackfillPolicy.single_run());
- ``vpcpeer runs purge`` deletes the finished runs older than its cutoff and nothing else.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests import postgres
from tests.e2e.conftest import BIN, REPO, default_signals, stop_embedded_aws

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(postgres.unavailable() is not None, reason=postgres.unavailable() or "")]

RUN_TIMEOUT = 600


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def team(tmp_path, monkeypatch):
    """A DAGSTER_HOME with the team configuration on a throwaway PostgreSQL server."""
    server = postgres.start()
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.postgres.yaml", home / "dagster.yaml")
    # As a team sets it: every process (code servers started before the first rollout included)
    # declares the same partitions.
    start = (datetime.now(timezone.utc) - timedelta(days=3)).strftime("%Y-%m-%d")
    settings = {"DAGSTER_HOME": str(home), "VPCPEER_PARTITIONS_START": start, **server.env}
    env = {**os.environ, **settings}
    for name in ("VPCPEER_HOME", "VPCPEER_AWS_ENDPOINT"):
        env.pop(name, None)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    processes: list[subprocess.Popen] = []
    try:
        yield {"env": env, "home": home, "processes": processes, "logs": tmp_path}
    finally:
        for process in reversed(processes):
            _stop(process)
        stop_embedded_aws(env)
        server.stop()


def test_the_team_configuration_loads_against_postgres(team) -> None:
    import dagster as dg
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    info = subprocess.run([str(BIN / "dagster"), "instance", "info"], env=team["env"], capture_output=True, text=True,
                          timeout=120)
    assert info.returncode == 0, info.stderr[-2000:]
    assert "run_storage: PostgresRunStorage" in info.stdout and "max_concurrent_runs: 10" in info.stdout
    assert info.stdout.count("current: ") == 3  # every storage's schema created, at the latest revision

    instance = dg.DagsterInstance.from_config(str(team["home"]))
    try:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 10
        limits = {limit["key"]: limit for limit in queue.tag_concurrency_limits}
        assert limits["dagster/partition"] == {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True},
                                               "limit": 1}
        assert limits["vpcpeer/logs-insights"]["limit"] == 2
        assert instance.run_monitoring_enabled
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    finally:
        instance.dispose()


def _code_server(team, port: int) -> None:
    log = open(team["logs"] / f"code-server-{port}.log", "w")  # noqa: SIM115 - written while it runs
    team["processes"].append(subprocess.Popen(
        [str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(port), "-m",
         "vpcpeer_orchestration.definitions", "--location-name", "vpcpeer"],
        cwd=REPO, env=team["env"], stdout=log, stderr=subprocess.STDOUT, preexec_fn=default_signals))
    deadline = time.monotonic() + 120
    while subprocess.run([str(BIN / "dagster"), "api", "grpc-health-check", "-h", "127.0.0.1", "-p", str(port)],
                         env=team["env"], capture_output=True).returncode:
        assert time.monotonic() < deadline, (team["logs"] / f"code-server-{port}.log").read_text()[-2000:]
        time.sleep(1)


def _workspace(team, name: str, port: int) -> Path:
    path = team["logs"] / f"{name}.yaml"
    path.write_text(f"load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: {port}\n"
                    "      location_name: vpcpeer\n")
    return path


def _daemon(team, workspace: Path, name: str) -> subprocess.Popen:
    log = open(team["logs"] / f"{name}.log", "w")  # noqa: SIM115 - written while it runs
    process = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], cwd=REPO, env=team["env"],
                               stdout=log, stderr=subprocess.STDOUT, preexec_fn=default_signals)
    team["processes"].append(process)
    return process


def _cli(team, *args: str) -> str:
    done = subprocess.run([str(BIN / args[0]), *args[1:]], cwd=REPO, env=team["env"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def _finished_run(instance, filters: dict, team, what: str):
    """The latest run matching ``filters`` (RunsFilter's fields), once it has finished; fails
    with the daemon's log tail."""
    import dagster as dg

    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        runs = instance.get_runs(filters=dg.RunsFilter(**filters))
        if runs and runs[0].is_finished:
            return runs[0]
        time.sleep(2)
    logs = "\n".join(p.read_text()[-1500:] for p in team["logs"].glob("daemon-*.log"))
    pytest.fail(f"no finished run for {what} ({filters}) in {RUN_TIMEOUT} s; daemon log:\n{logs}")


def test_the_daemon_runs_the_schedule_the_sensor_and_a_backfill_on_postgres(team) -> None:
    import dagster as dg
    from dagster._core.execution.backfill import PartitionBackfill
    from dagster._core.scheduler.instigation import InstigatorType, ScheduleInstigatorData

    from lambda_pkg.constants import DEFAULT_SETTLE_LAG_SECONDS
    from lambda_pkg.window import last_complete_hour
    from vpcpeer_orchestration.definitions import build_definitions
    from vpcpeer_orchestration.local.server import LocalAws
    from vpcpeer_orchestration.local.stack import EmbeddedStack

    _cli(team, "vpcpeer", "local", "up")
    web_port, daemon_port = postgres.free_port(), postgres.free_port()
    _code_server(team, web_port)
    _code_server(team, daemon_port)
    web, daemon_workspace = _workspace(team, "web", web_port), _workspace(team, "daemon", daemon_port)
    instance = dg.DagsterInstance.from_config(str(team["home"]))
    try:
        # 1. Launched through one code server, queued, dequeued by the daemon through the other.
        daemon = _daemon(team, daemon_workspace, "daemon-1")
        rollout = str(uuid.uuid4())
        _cli(team, "dagster", "job", "launch", "-w", str(web), "-j", "rollout_job", "--run-id", rollout)
        run = _finished_run(instance, {"run_ids": [rollout]}, team, "the launched rollout")
        assert run.run_id == rollout and run.status == dg.DagsterRunStatus.SUCCESS

        # 2. A rule added by hand: the drift sensor's first tick in the daemon requests a rollout.
        stack = EmbeddedStack(LocalAws.from_env(team["home"]), "dev")
        ec2, group = stack.clients("ec2"), stack.outputs()["vpc_b_security_group_id"]
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        _cli(team, "dagster", "sensor", "start", "stack_drift_sensor", "-w", str(web))
        repair = _finished_run(instance, {"tags": {"dagster/sensor_name": "stack_drift_sensor"}}, team, "the drift rollout")
        assert repair.status == dg.DagsterRunStatus.SUCCESS
        assert "rules_match_declared_ports" in repair.tags["vpcpeer/drift"]
        rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]
        assert not [r for r in rules if r.get("CidrIpv4") == "0.0.0.0/0" and not r.get("IsEgress")]
        _stop(daemon)

        # 3. The schedule, started an hour ago (the daemon reads that when it starts): one tick.
        _cli(team, "dagster", "schedule", "start", "traffic_analysis_schedule", "-w", str(web))
        [state] = [s for s in instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
                   if s.name == "traffic_analysis_schedule"]
        instance.update_instigator_state(state.with_data(ScheduleInstigatorData(
            state.instigator_data.cron_schedule, start_timestamp=time.time() - 3600)))
        # 4. 24 hours ending three hours before the hour the tick analyses, as one asset backfill.
        last = last_complete_hour(datetime.now(timezone.utc), timedelta(seconds=DEFAULT_SETTLE_LAG_SECONDS)).start
        keys = [(last - timedelta(hours=h)).strftime("%Y-%m-%d-%H:00") for h in range(27, 3, -1)]
        defs = build_definitions("embedded")
        graph = defs.resolve_asset_graph()
        traffic = [key for key in graph.get_all_asset_keys() if graph.get(key).group_name == "traffic"]
        backfill_id = "day-" + uuid.uuid4().hex[:8]
        instance.add_backfill(PartitionBackfill.from_asset_partitions(
            backfill_id=backfill_id, asset_graph=graph, partition_names=keys, asset_selection=traffic,
            backfill_timestamp=time.time(), tags={}, dynamic_partitions_store=instance, all_partitions=False,
            title="24 hours", description=None, run_config=None))
        _daemon(team, daemon_workspace, "daemon-2")

        tick = _finished_run(instance, {"tags": {"dagster/schedule_name": "traffic_analysis_schedule"}}, team,
                             "the schedule tick")
        assert tick.status == dg.DagsterRunStatus.SUCCESS, tick.run_id
        hour = datetime.strptime(tick.tags["dagster/partition"], "%Y-%m-%d-%H:%M").replace(tzinfo=timezone.utc)
        assert timedelta(minutes=10) <= datetime.now(timezone.utc) - (hour + timedelta(hours=1)) <= timedelta(hours=2)

        backfill = _finished_run(instance, {"tags": {"dagster/backfill": backfill_id}}, team, "the 24-hour backfill")
        assert backfill.status == dg.DagsterRunStatus.SUCCESS, backfill.run_id
        assert len(instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))) == 1
        analysed = instance.get_materialized_partitions(dg.AssetKey("traffic_analysis"))
        assert set(keys) <= analysed

        # 5. Run retention: the first rollout made 100 days old in the database; purge removes it only.
        import psycopg2

        with psycopg2.connect(host="127.0.0.1", port=team["env"]["DAGSTER_PG_PORT"], user=postgres.USER,
                              dbname=postgres.DATABASE) as connection, connection.cursor() as cursor:
            cursor.execute("UPDATE runs SET create_timestamp = create_timestamp - interval '100 days' WHERE run_id = %s",
                           (rollout,))
        before = len(instance.get_runs())
        assert "would delete 1 finished run(s)" in _cli(team, "vpcpeer", "runs", "purge", "--older-than-days", "90",
                                                        "--dry-run")
        assert "deleted 1 finished run(s)" in _cli(team, "vpcpeer", "runs", "purge", "--older-than-days", "90")
        assert instance.get_run_by_id(rollout) is None and len(instance.get_runs()) == before - 1
    finally:
        instance.dispose()
