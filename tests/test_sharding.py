"""The training loops on many devices and processes: the same losses as on one
device, the state laid out as claimed, one compilation, checkpoints that move
between layouts. Each run is a process of its own, since the number of (simulated
CPU) devices is fixed when JAX starts."""

import json
import subprocess
import sys

import numpy as np
import pytest

from learnjax import experiments

# Eight devices add the gradients and losses of their rows in another order than
from learnjax.training import sharding

# one device does: float32 sums that differ in the last bits, step after step.
# Measured: at most 2.4e-6 after 40 steps, on losses of 3 to 6.
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def scaling_out():
    return experiments.scaling_out()  # the Scaling out page's run, cached


@pytest.fixture(scope="module")
def eight_devices(scaling_out):
    return scaling_out["mesh"]


@pytest.mark.parametrize("objective", ["masked", "next-word", "supervised"])
def test_sharded_runs_give_the_one_device_losses(eight_devices, objective):
    result = eight_devices["objectives"][objective]
    assert eight_devices["devices"] == 8
    assert len(result["losses"]["one device"]) == 40
    for layout in ("data parallel", "fsdp"):
        assert result["max_difference"][layout] < TOLERANCE, (layout, result["max_difference"])


@pytest.mark.parametrize("objective", ["masked", "next-word", "supervised"])
def test_the_state_is_laid_out_as_claimed(eight_devices, objective):
    layouts = eight_devices["objectives"][objective]["layouts"]
    replicated, sharded = layouts["data parallel"], layouts["fsdp"]
    assert replicated["parameter_spec"] == replicated["moment_spec"] == "P()"
    assert replicated["parameter_devices"] == 8 and replicated["bytes_per_device"] == replicated["bytes"]
    assert sharded["parameter_spec"] == sharded["moment_spec"] == "P(None, 'data')"
    assert sharded["bytes_per_device"] * 8 == sharded["bytes"]


@pytest.mark.parametrize("objective", ["masked", "next-word", "supervised"])
def test_each_layout_compiles_its_step_once(eight_devices, objective):
    # The counted run follows a warm-up run: a second run of the same shapes compiles nothing.
    for layout, report in eight_devices["objectives"][objective]["layouts"].items():
        assert report["compilations"] == 0, layout


def test_checkpoints_move_between_layouts(eight_devices):
    report = eight_devices["objectives"]["masked"]["layouts"]["fsdp"]
    assert report["checkpoint_devices"] == 1  # saved from 8 devices, loaded on one
    assert report["checkpoint_max_difference"] < 1e-5
    assert report["resumed_on_mesh_finite"]  # and a one-device model trains on the mesh


def test_two_processes_end_with_the_parameters_of_one(scaling_out):
    result = scaling_out["processes"]
    single = result["single"]
    assert [p["process"] for p in result["processes"]] == [0, 1]
    for part in result["processes"]:
        assert (part["processes"], part["devices"], part["local_devices"]) == (2, 4, 2)
        assert np.abs(np.array(part["losses"]) - np.array(single["losses"])).max() < TOLERANCE
        assert np.abs(np.array(part["flat"]) - np.array(single["flat"])).max() < TOLERANCE


def test_fsdp_splits_the_largest_axis_the_devices_divide():
    assert str(sharding.fsdp_spec((361, 64), 8)) == "P(None, 'data')"
    assert str(sharding.fsdp_spec((128, 256), 8)) == "P(None, 'data')"
    assert str(sharding.fsdp_spec((256, 128), 8)) == "P('data', None)"
    assert str(sharding.fsdp_spec((3,), 8)) == "P()"
    assert str(sharding.fsdp_spec((), 8)) == "P()"


def test_batches_must_split_evenly_and_devices_exist(eight_devices):
    assert eight_devices["uneven_batch_error"] == "batch_size=9 does not split evenly over 8 devices; use a multiple of 8"
    with pytest.raises(ValueError, match="devices must be between 1 and the 1 visible, got 99"):
        sharding.data_mesh(99)


def test_the_command_line_trains_on_every_visible_device(tmp_path):
    import os

    (tmp_path / "notes.txt").write_text("the cat sat on the mat.\nthe dog sat on the rug.\n" * 40, encoding="utf-8")
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "8", "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-m", "learnjax.cli", "pretrain", "--corpus", str(tmp_path / "notes.txt"), "--steps", "4",
               "--batch-size", "16", "--json"]
    default = subprocess.run([*command, "--out", str(tmp_path / "dp")], capture_output=True, text=True, env=env, timeout=600)
    assert default.returncode == 0, default.stderr
    assert (json.loads(default.stdout)["devices"], json.loads(default.stdout)["fsdp"]) == (8, False)
    fsdp = subprocess.run([*command, "--devices", "4", "--fsdp", "--out", str(tmp_path / "fsdp")], capture_output=True, text=True, env=env, timeout=600)
    assert fsdp.returncode == 0, fsdp.stderr
    assert (json.loads(fsdp.stdout)["devices"], json.loads(fsdp.stdout)["fsdp"]) == (4, True)
    uneven = subprocess.run([*command[:-3], "--batch-size", "12", "--json", "--out", str(tmp_path / "x")], capture_output=True, text=True, env=env, timeout=600)
    assert uneven.returncode == 1 and "does not split evenly over 8 devices" in uneven.stderr


def _process_runs_alive() -> list:
    import psutil

    return [p for p in psutil.process_iter(["cmdline"]) if "--process-run" in (p.info["cmdline"] or [])]


def test_the_launcher_ends_every_process_on_a_timeout_or_a_failure():
    from learnjax.training.scaling_check import run_processes

    with pytest.raises(subprocess.TimeoutExpired):
        run_processes(2, 2, steps=20, timeout=1)
    assert not _process_runs_alive()
    with pytest.raises(RuntimeError, match="a process exited with status"):
        run_processes(2, 0, steps=2, timeout=300)  # no devices: JAX refuses to start
    assert not _process_runs_alive()
