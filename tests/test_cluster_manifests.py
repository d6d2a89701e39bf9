"""The files under cluster/ agree with KubeRay, Ray's cluster launcher and the package itself.

Nothing here starts a cluster: each manifest is parsed and checked for the fields KubeRay and the
launcher need, and for images, versions, entrypoints and serve applications that match the repo.
"""

from __future__ import annotations

import copy
import importlib
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
VERSION = PYPROJECT["version"]


def _pin(name: str) -> str:
    """The requirement string of a dependency of pyproject.toml."""
    return next(d for d in PYPROJECT["dependencies"] if re.match(rf"{name}[\[<>=]", d))


RAY_VERSION = _pin("ray").split("==")[1]
TORCH_SPEC = SpecifierSet(_pin("torch").removeprefix("torch"))
CPU_IMAGE = f"registry.example.com/recursa:{VERSION}"
GPU_IMAGE = f"{CPU_IMAGE}-gpu"


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _ray_resources(kind: str) -> list[tuple[Path, dict]]:
    return [(p, d) for p in sorted((CLUSTER / "kuberay").glob("*.yaml")) for d in _docs(p)
            if d.get("apiVersion") == "ray.io/v1" and d["kind"] == kind]


def _cluster_specs() -> list[tuple[str, dict]]:
    """Every RayClusterSpec: RayCluster's spec, RayJob's rayClusterSpec, RayService's rayClusterConfig."""
    specs = [(f"{p.name}:RayCluster", d["spec"]) for p, d in _ray_resources("RayCluster")]
    specs += [(f"{p.name}:RayJob", d["spec"]["rayClusterSpec"]) for p, d in _ray_resources("RayJob")]
    specs += [(f"{p.name}:RayService", d["spec"]["rayClusterConfig"])
              for p, d in _ray_resources("RayService")]
    return specs


def _containers(spec: dict):
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    for group in groups:
        yield group, group["template"]["spec"]["containers"][0]


def _launcher_configs() -> list[tuple[str, dict]]:
    return [(p.name, yaml.safe_load(p.read_text())) for p in sorted((CLUSTER / "launcher").glob("*.yaml"))]


def test_every_yaml_parses_and_every_kind_is_present():
    kinds = {d.get("kind") for p in CLUSTER.rglob("*.yaml") for d in _docs(p)}
    assert {"RayCluster", "RayJob", "RayService"} <= kinds
    assert {name for name, _ in _launcher_configs()} == {"aws.yaml", "gcp.yaml"}


@pytest.mark.parametrize("name,spec", _cluster_specs(), ids=lambda v: v if isinstance(v, str) else "")
def test_kuberay_cluster_spec(name, spec):
    assert spec["rayVersion"] == RAY_VERSION
    assert spec["authOptions"] == {"mode": "token"}
    assert spec["enableInTreeAutoscaling"] is True
    assert "rayStartParams" in spec["headGroupSpec"]
    for group in spec["workerGroupSpecs"]:
        assert {"groupName", "replicas", "minReplicas", "maxReplicas", "rayStartParams", "template"} <= set(group)
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    for _, container in _containers(spec):
        assert container["name"] and container["resources"]["limits"]
    # rayStartParams are passed to `ray start` as strings; KubeRay rejects other types.
    for group, _ in _containers(spec):
        assert all(isinstance(v, str) for v in group["rayStartParams"].values())


def test_raycluster_has_cpu_and_gpu_groups_with_gpu_limits():
    [(_, cluster)] = _ray_resources("RayCluster")
    groups = {g["groupName"]: g for g in cluster["spec"]["workerGroupSpecs"]}
    assert {"cpu", "gpu"} <= set(groups)
    gpu = groups["gpu"]["template"]["spec"]["containers"][0]
    assert int(gpu["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    assert gpu["image"] == GPU_IMAGE
    cpu = groups["cpu"]["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in cpu["resources"]["limits"]


def test_every_image_is_the_package_version():
    images = {c["image"]: "nvidia.com/gpu" in c["resources"]["limits"]
              for _, spec in _cluster_specs() for _, c in _containers(spec)}
    assert images and all(image == (GPU_IMAGE if gpu else CPU_IMAGE) for image, gpu in images.items())
    for _, config in _launcher_configs():
        assert config["docker"]["image"] == CPU_IMAGE
        for node in config["available_node_types"].values():
            want = GPU_IMAGE if node["resources"].get("GPU") else CPU_IMAGE
            assert node.get("docker", {}).get("worker_image", config["docker"]["image"]) == want


def test_dockerfile_pins_match_the_package():
    text = (CLUSTER / "image" / "Dockerfile").read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S*)$", text, re.M))
    assert re.search(r"^FROM python:3\.11[-.\w]*$", text, re.M)
    assert SpecifierSet(PYPROJECT["requires-python"]).contains("3.11")
    assert args["RAY_VERSION"] == RAY_VERSION
    assert TORCH_SPEC.contains(args["TORCH_VERSION"])
    assert f"bfcl-eval=={args['BFCL_VERSION']}" in (ROOT / "Makefile").read_text()
    assert args["TORCH_INDEX"].endswith("/cpu")  # the default image never pulls CUDA
    for path in ("jobs", "serve", "platform", "pyproject.toml"):
        assert re.search(rf"^COPY {re.escape(path)}\b", text, re.M), path


def test_launcher_configs_pass_rays_own_validation():
    from ray.autoscaler._private.util import prepare_config, validate_config

    for name, config in _launcher_configs():
        # What `ray up` does first: merge the provider's defaults, then check the JSON schema.
        validate_config(prepare_config(copy.deepcopy(config)))
        assert config["provider"]["type"] == name.removesuffix(".yaml")
        nodes = config["available_node_types"]
        assert config["head_node_type"] in nodes
        assert any(n["resources"].get("GPU") for n in nodes.values())
        assert any(not n["resources"].get("GPU") and n["resources"].get("CPU") for n in nodes.values())
        setup = " ".join(config["setup_commands"])
        assert f"= {RAY_VERSION}" in setup
        head = " ".join(config["head_start_ray_commands"])
        assert "--head" in head and "--autoscaling-config=~/ray_bootstrap_config.yaml" in head
        for commands in (config["head_start_ray_commands"], config["worker_start_ray_commands"]):
            start = next(c for c in commands if "ray start" in c)
            assert "RAY_AUTH_MODE=token" in start
        assert "~/.ray/auth_token" in config["file_mounts"]


def _entrypoints() -> list[str]:
    """Every `python -m recursa.cli ...` command under cluster/: RayJob entrypoints, and the
    commands the scripts, launcher configs and README show."""
    found = [d["spec"]["entrypoint"] for _, d in _ray_resources("RayJob")]
    for path in [*CLUSTER.rglob("*.yaml"), *CLUSTER.rglob("*.sh"), CLUSTER / "README.md"]:
        found += re.findall(r"python -m recursa\.cli [^\n`\\]*", path.read_text())
    return found


def test_entrypoints_run_recursa_commands_with_existing_configs(recursa_cli):
    entrypoints = _entrypoints()
    assert any("train gift" in entry for entry in entrypoints)
    assert not any(re.search(r"jobs/\w+\.py", path.read_text()) for path in CLUSTER.rglob("*") if path.is_file())
    for entry in entrypoints:
        argv = shlex.split(entry)
        assert argv[:3] == ["python", "-m", "recursa.cli"], entry
        if "--config" in argv:
            assert (ROOT / argv[argv.index("--config") + 1]).is_file(), entry
        code, stderr = recursa_cli([*argv[3:], "--help"])  # the command and its options exist
        assert code == 0, (entry, stderr)


def _serve_services() -> list[tuple[dict, list[dict]]]:
    """Each RayService's serve config, and the applications of the serve/ files it names."""
    pairs = []
    for _, service in _ray_resources("RayService"):
        files = service["metadata"]["annotations"]["recursa/serve-config"].split(",")
        applications = [app for name in files for app in yaml.safe_load((ROOT / name).read_text())["applications"]]
        pairs.append((yaml.safe_load(service["spec"]["serveConfigV2"]), applications))
    return pairs


def test_rayservice_applications_equal_the_serve_files():
    pairs = _serve_services()
    assert {app["name"] for config, _ in pairs for app in config["applications"]} >= {"tools", "gift", "llm"}
    for config, applications in pairs:
        assert config["applications"] == applications
        assert config["http_options"]["host"] == "0.0.0.0"  # the serve Service reaches the pod's proxy


def test_serve_import_paths_resolve():
    for config, _ in _serve_services():
        for app in config["applications"]:
            module, attr = app["import_path"].split(":")
            assert module.startswith("recursa.") and module.endswith(".serve")
            assert callable(getattr(importlib.import_module(module), attr))


def test_local_script_is_valid_bash_and_never_stops_every_ray():
    for script in (CLUSTER / "local").glob("*.sh"):
        subprocess.run(["bash", "-n", str(script)], check=True)
        code = "\n".join(line for line in script.read_text().splitlines() if not line.lstrip().startswith("#"))
        assert not re.search(r'(\bray|RAY_BIN"?)\s+stop', code)  # `ray stop` kills everyone's Ray
        assert "RAY_AUTH_MODE=token" in code and "--dashboard-host=127.0.0.1" in code


def test_nothing_disables_authentication():
    for path in [*CLUSTER.rglob("*")]:
        if path.is_file():
            text = path.read_text().lower()
            assert not re.search(r"ray_auth_mode\s*[=:]\s*[\"']?disabled\b", text), path
            assert not re.search(r"mode:\s*[\"']?disabled\b", text), path
