"""The production recipe in deploy/ loads and validates: the Dagster instance on a real
PostgreSQL server, the docker-compose services against the real command lines, and the Helm
values against dagster-k8s's own run-launcher schema."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tessera.settings import PROJECT_ROOT, SettingsError, load_settings

DEPLOY = PROJECT_ROOT / "deploy"
#: Names that carry secrets: they may only come from the environment, never from a file here.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|ACCOUNT_SID|PUBLIC_KEY|TRACK_KEYS")
#: A compose value that is the variable itself, from the environment: ${NAME}, ${NAME:-},
#: ${NAME:?why}.
FROM_ENV = re.compile(r"^\$\{(?P<name>[A-Z0-9_]+)(:?[-?][^}]*)?\}$")


def _yaml(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def _pg_env(monkeypatch: pytest.MonkeyPatch, server, db: str) -> None:
    monkeypatch.setenv("DAGSTER_PG_HOST", server.host)
    monkeypatch.setenv("DAGSTER_PG_PORT", str(server.port))
    monkeypatch.setenv("DAGSTER_PG_USER", server.user)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", server.password)
    monkeypatch.setenv("DAGSTER_PG_DB", db)


def _instance_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    return home


# --- dagster.yaml ---------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_the_deploy_instance_keeps_runs_events_and_schedules_in_postgres(
    postgres_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pg_env(monkeypatch, postgres_server, postgres_server.create_database("dagster"))
    home = _instance_home(tmp_path)

    instance = dg.DagsterInstance.from_config(str(home))
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    pools = instance.get_concurrency_config().pool_config
    assert pools.default_pool_limit == 1

    @dg.asset
    def probe() -> int:
        return 1

    result = dg.materialize([probe], instance=instance)
    assert result.success
    instance.dispose()

    # Another process (the webserver, the daemon) sees the run and its materialization.
    other = dg.DagsterInstance.from_config(str(home))
    assert [run.run_id for run in other.get_runs()] == [result.run_id]
    assert other.get_latest_materialization_event(dg.AssetKey("probe")) is not None
    other.dispose()


def test_the_deploy_instance_names_a_missing_postgres_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HOST", "PORT", "USER", "DB"):
        monkeypatch.setenv(f"DAGSTER_PG_{name}", "5432" if name == "PORT" else "x")
    monkeypatch.delenv("DAGSTER_PG_PASSWORD", raising=False)
    with pytest.raises(Exception, match="DAGSTER_PG_PASSWORD"):
        dg.DagsterInstance.from_config(str(_instance_home(tmp_path)))


def test_the_deploy_instance_keeps_the_local_pools_and_logs() -> None:
    """One writer of the warehouse and Tessera's log lines in the UI, as `tessera run` has."""
    from tessera.orchestration.run_cli import DAGSTER_YAML

    local = yaml.safe_load(DAGSTER_YAML)
    deploy = _yaml("dagster.yaml")
    for key in ("concurrency", "python_logs", "telemetry"):
        assert deploy[key] == local[key], key


# --- docker-compose.yml ---------------------------------------------------------------------


def _compose() -> dict:
    return _yaml("docker-compose.yml")


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    return {k: str(v) for k, v in env.items()}


def _documented_settings() -> set[str]:
    """The TESSERA_ settings the README or a docs/ page names."""
    pages = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
    return {n for page in pages for n in re.findall(r"`(TESSERA_[A-Z0-9_]+)", page.read_text())}


def test_compose_has_every_service_and_publishes_only_on_loopback() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "code", "webserver", "daemon", "review", "events"}
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_compose_commands_parse_with_the_real_command_lines() -> None:
    from dagster._cli import cli as dagster_cli
    from dagster._daemon.cli import cli as daemon_cli
    from dagster_webserver.cli import cli as webserver_cli

    from tessera.cli import build_parser

    services = _compose()["services"]
    code = services["code"]["command"]
    assert code[:3] == ["dagster", "code-server", "start"]
    params = dagster_cli.commands["code-server"].commands["start"].make_context("start", code[3:])
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["dagster"]
    assert params.params["module_name"] == pyproject["module_name"]
    assert params.params["location_name"] == pyproject["code_location_name"]

    # The webserver and the daemon find the code server where it listens.
    workspace = _yaml("workspace.yaml")["load_from"][0]["grpc_server"]
    assert workspace["host"] == "code"
    assert workspace["port"] == params.params["port"]
    assert workspace["location_name"] == pyproject["code_location_name"]
    # The image holds deploy/workspace.yaml at /opt/dagster/workspace.yaml.
    in_image = "/opt/dagster/workspace.yaml"
    assert f"COPY deploy/workspace.yaml {in_image}" in (DEPLOY / "Dockerfile").read_text()
    here = str(DEPLOY / "workspace.yaml")
    web = services["webserver"]["command"]
    daemon = services["daemon"]["command"]
    assert in_image in web and in_image in daemon
    webserver_cli.make_context("dagster-webserver", [here if a == in_image else a for a in web[1:]])
    daemon_cli.commands[daemon[1]].make_context(
        daemon[1], [here if a == in_image else a for a in daemon[2:]]
    )

    parser = build_parser()
    for name in ("review", "events"):
        command = services[name]["command"]
        assert command[0] == "tessera"
        args = parser.parse_args(command[1:])
        assert args.host == "0.0.0.0", f"{name} must listen on the container's network"
    assert parser.parse_args(services["review"]["command"][1:]).dagster_url == (
        "http://webserver:3000"
    )


def test_compose_takes_every_secret_from_the_environment_and_names_real_settings() -> None:
    services = _compose()["services"]
    documented = _documented_settings()
    example = (DEPLOY / ".env.example").read_text()
    for name, service in services.items():
        for key, value in _environment(service).items():
            if SECRET_NAME.search(key):
                match = FROM_ENV.match(value)
                assert match, f"{name}: {key} has a value in the file ({value!r})"
                source = match.group("name")
                assert source in {key, "DAGSTER_PG_PASSWORD"}, f"{name}: {key} from {source}"
                assert re.search(rf"^{source}=", example, re.M), f".env.example lacks {source}"
            if key.startswith("TESSERA_"):
                assert key in documented, f"{name}: {key} is not a setting the README documents"
        if name == "postgres":
            continue
        assert service["image"] == "tessera:latest"
    # Every variable the file reads from the environment has its line in .env.example.
    for source in set(re.findall(r"\$\{([A-Z0-9_]+)", (DEPLOY / "docker-compose.yml").read_text())):
        assert re.search(rf"^{source}=", example, re.M), f".env.example lacks {source}"
    # One image, built from this project's Dockerfile by the code service.
    build = services["code"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"


def test_the_dockerfile_copies_what_exists_and_installs_the_deploy_extra() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    for sources in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for source in sources.split():
            assert (PROJECT_ROOT / source).exists(), f"Dockerfile copies missing {source}"
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    uv = re.search(r"^UV_VERSION := (\S+)", makefile, re.M).group(1)
    assert f'"uv=={uv}"' in text, "the image's uv differs from the Makefile's"
    extras = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert "--extra deploy" in text
    assert any(dep.startswith("dagster-postgres") for dep in extras["deploy"])


# --- helm/values.yaml -----------------------------------------------------------------------


def _values() -> dict:
    return _yaml("helm/values.yaml")


def _chart_run_launcher_config(values: dict) -> dict:
    """The K8sRunLauncher config the chart writes into the instance from these values (the
    chart's documented mapping of runLauncher.config.k8sRunLauncher keys), with the fields the
    chart itself fills in (namespace, service account, instance ConfigMap) set as it sets them."""
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    config: dict = {
        "load_incluster_config": k8s["loadInclusterConfig"],
        "job_namespace": "tessera",
        "image_pull_policy": k8s["imagePullPolicy"],
        "service_account_name": "tessera-dagster",
        "dagster_home": values["global"]["dagsterHome"],
        "instance_config_map": "tessera-dagster-instance",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
        "env_secrets": [s["name"] for s in k8s.get("envSecrets", [])],
        "volume_mounts": k8s.get("volumeMounts", []),
        "volumes": k8s.get("volumes", []),
        "fail_pod_on_run_failure": bool(k8s.get("failPodOnRunFailure")),
    }
    if "runK8sConfig" in k8s:
        names = {"containerConfig": "container_config", "podSpecConfig": "pod_spec_config"}
        config["run_k8s_config"] = {names[k]: v for k, v in k8s["runK8sConfig"].items()}
    return config


def test_helm_run_launcher_values_validate_against_dagster_k8s() -> None:
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher

    values = _values()
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    result = process_config(K8sRunLauncher.config_type(), _chart_run_launcher_config(values))
    assert result.success, [error.message for error in result.errors or []]


def test_helm_values_load_tessera_and_keep_secrets_out() -> None:
    from dagster._cli import cli as dagster_cli

    values = _values()
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    grpc = (
        dagster_cli.commands["api"]
        .commands["grpc"]
        .make_context("grpc", deployment["dagsterApiGrpcArgs"])
    )
    assert grpc.params["module_name"] == "tessera.orchestration.definitions"
    env = {item["name"]: item["value"] for item in deployment["env"]}
    documented = _documented_settings()
    for name in env:
        assert not SECRET_NAME.search(name), f"{name} belongs in the tessera-secrets Secret"
        assert name in documented, f"{name} is not a setting the README documents"
    # The values the deployment sets are values Tessera accepts.
    load_settings(env)
    assert values["postgresql"]["enabled"] is False
    assert values["postgresql"]["postgresqlPassword"] == ""
    assert values["generatePostgresqlPasswordSecret"] is False
    # The run pods and the code location mount the same warehouse claim.
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert deployment["volumes"] == k8s["volumes"]
    assert deployment["volumeMounts"] == k8s["volumeMounts"]
    assert deployment["volumeMounts"][0]["mountPath"] == env["TESSERA_DATA_DIR"]
    # Same pools as the compose instance.
    pools = _yaml("dagster.yaml")["concurrency"]["pools"]
    assert values["concurrency"]["pools"] == {
        "defaultLimit": pools["default_limit"],
        "granularity": pools["granularity"],
    }


# --- TESSERA_EXECUTOR -----------------------------------------------------------------------


def test_the_executor_setting_picks_the_jobs_executor() -> None:
    from tessera.orchestration.defs.pipeline.jobs import build_executor

    assert build_executor("multiprocess") is None
    assert build_executor("in_process").name == "in_process"
    assert build_executor("k8s").name == "k8s"
    assert load_settings({}).executor == "multiprocess"
    assert load_settings({"TESSERA_EXECUTOR": "k8s"}).executor == "k8s"
    with pytest.raises(SettingsError, match="TESSERA_EXECUTOR='kubernetes'"):
        load_settings({"TESSERA_EXECUTOR": "kubernetes"})


@pytest.mark.timeout(300)
def test_the_code_location_runs_its_jobs_on_kubernetes_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TESSERA_EXECUTOR", "k8s")
    from tessera.orchestration.definitions import defs

    job = defs().resolve_job_def("daily_pipeline")
    assert job.executor_def.name == "k8s"
