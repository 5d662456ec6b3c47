"""Runs the library's training loops on one device and on a mesh of many, and
reports how they compare: the measurement behind the Scaling out page and the
sharding tests.

The number of devices is fixed when JAX starts, so each run is a process of its
own, started with simulated CPU devices (it sets `JAX_NUM_CPU_DEVICES` before
JAX loads). Prints JSON.

    python -m learnjax.training.scaling_check --devices 8          # one process, 8 devices
    python -m learnjax.training.scaling_check --processes 2 --devices 2
        # 2 processes of 2 devices each, joined by jax.distributed, against one process
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from learnjax.data import corpus, messages
from learnjax.storage.progress import History
from learnjax.text.tokenizer import Tokenizer


# JAX, and the modules that import it, are imported inside the functions that run
# in a started process, after `main` has set the number of simulated devices:
# JAX reads it once, when it loads.
def _runs(devices: int, steps: int) -> dict:
    import jax
    import numpy as np
    from flax import nnx

    from learnjax.models.transformer import EncoderClassifier, MaskedLanguageModel, NextWordModel, Transformer, TransformerConfig
    from learnjax.training import sharding
    from learnjax.training.diagnostics import count_compilations
    from learnjax.training.foundation import Foundation
    from learnjax.training.loops import adamw, new_optimizer, train_classifier, train_masked_prediction, train_next_word

    texts = corpus.build_corpus(2000)
    tokenizer = Tokenizer.from_texts(texts)
    tokens, segments = tokenizer.encode_packed(texts, 32)
    end_tokens, end_segments = tokenizer.encode_packed(texts, 32, end=True)
    pool = messages.labeled_splits()["pool"]
    labeled = tokenizer.encode_batch([m.text for m in pool], messages.MESSAGE_MAX_LEN)
    labels = np.array([m.label for m in pool], np.int32)
    config = TransformerConfig(len(tokenizer), 32, 64, 2, 4, 128)
    tx = adamw(steps, 10)
    batch = 2 * devices * max(1, 16 // devices)  # divisible by the devices, the same on every layout

    objectives = {
        "masked": (
            lambda: MaskedLanguageModel(config, rngs=nnx.Rngs(0)),
            lambda m, o, **kw: train_masked_prediction(m, o, tokens, segments, mask_rate=0.25, **kw),
        ),
        "next-word": (lambda: NextWordModel(config, rngs=nnx.Rngs(0)), lambda m, o, **kw: train_next_word(m, o, end_tokens, end_segments, **kw)),
        "supervised": (
            lambda: EncoderClassifier(Transformer(config, rngs=nnx.Rngs(0)), 2, rngs=nnx.Rngs(1)),
            lambda m, o, **kw: train_classifier(m, o, labeled, labels, **kw),
        ),
    }
    layouts = {"one device": None, "data parallel": False, "fsdp": True}
    mesh = sharding.data_mesh(devices)
    result = {"devices": devices, "device_kind": jax.devices()[0].platform, "steps": steps, "batch_size": batch, "objectives": {}}
    try:  # a batch the devices cannot split evenly
        sharding.check_batch(devices + 1, mesh)
    except ValueError as e:
        result["uneven_batch_error"] = str(e)
    for name, (build, train) in objectives.items():
        histories, layout_report = {}, {}
        for layout, fsdp in layouts.items():
            model = build()
            optimizer = new_optimizer(model, tx, 3e-3)
            options = {} if fsdp is None else {"mesh": mesh, "fsdp": fsdp}
            train(model, optimizer, steps=1, batch_size=batch, **options)  # compiles the program
            model = build()
            optimizer = new_optimizer(model, tx, 3e-3)
            with count_compilations() as compiled:
                history: History = train(model, optimizer, steps=steps, batch_size=batch, **options)
            histories[layout] = history.loss
            kernel = model.decoder if name == "next-word" else model.encoder
            param = kernel.blocks[0].ff1.kernel[...]
            moment = optimizer.opt_state.inner_state[0].mu["decoder" if name == "next-word" else "encoder"]["blocks"][0]["ff1"]["kernel"][...]
            layout_report[layout] = {
                "compilations": compiled.count,
                "parameter_spec": str(getattr(param.sharding, "spec", "single device")),
                "moment_spec": str(getattr(moment.sharding, "spec", "single device")),
                "parameter_devices": len(param.sharding.device_set),
                "bytes_per_device": int(param.addressable_shards[0].data.nbytes),
                "bytes": int(param.nbytes),
            }
            if name == "masked" and fsdp:  # a sharded checkpoint loads on one device
                with tempfile.TemporaryDirectory() as folder:
                    Foundation(model, tokenizer, history).save(folder)
                    loaded = Foundation.load(folder)
                    probe = tokens[:4]
                    layout_report[layout]["checkpoint_max_difference"] = float(
                        np.abs(np.asarray(loaded.model(probe)) - np.asarray(model(probe))).max()
                    )
                    layout_report[layout]["checkpoint_devices"] = len(loaded.model.encoder.blocks[0].ff1.kernel[...].sharding.device_set)
                    # ... and a one-device checkpoint trains on the mesh
                    optimizer2 = new_optimizer(loaded.model, tx, 3e-3)
                    resumed = train_masked_prediction(
                        loaded.model, optimizer2, tokens, segments, steps=3, batch_size=batch, mask_rate=0.25, mesh=mesh
                    )
                    layout_report[layout]["resumed_on_mesh_finite"] = bool(np.isfinite(resumed.loss).all())
        base = np.array(histories["one device"])
        result["objectives"][name] = {
            "losses": histories,
            "max_difference": {layout: float(np.abs(np.array(h) - base).max()) for layout, h in histories.items() if layout != "one device"},
            "layouts": layout_report,
        }
    return result


def _process_run(steps: int, coordinator: str | None, processes: int, process_id: int) -> dict:
    """One process's part of a masked-prediction run, data parallel over every
    device of every process (after `jax.distributed.initialize`)."""
    import jax

    if coordinator:
        # Generous timeouts: on a small, busy machine a process may wait minutes for
        # the others to start and compile (the defaults end the run after 100 s).
        jax.distributed.initialize(coordinator, processes, process_id, initialization_timeout=900, heartbeat_timeout_seconds=900)
    import numpy as np
    from flax import nnx

    from learnjax.models.transformer import MaskedLanguageModel, TransformerConfig
    from learnjax.training import sharding
    from learnjax.training.loops import adamw, new_optimizer, train_masked_prediction

    texts = corpus.build_corpus(2000)
    tokenizer = Tokenizer.from_texts(texts)
    tokens, segments = tokenizer.encode_packed(texts, 32)
    model = MaskedLanguageModel(TransformerConfig(len(tokenizer), 32, 64, 2, 4, 128), rngs=nnx.Rngs(0))
    optimizer = new_optimizer(model, adamw(steps, 10), 3e-3)
    mesh = sharding.data_mesh()
    history = train_masked_prediction(model, optimizer, tokens, segments, steps=steps, batch_size=16, mask_rate=0.25, mesh=mesh)
    params = [sharding.fetch(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))]
    return {
        "process": jax.process_index(),
        "processes": jax.process_count(),
        "devices": jax.device_count(),
        "local_devices": jax.local_device_count(),
        "losses": history.loss,
        "parameters": [p.tolist() for p in params[:1]],
        "fingerprint": hashlib.sha256(b"".join(np.round(p, 5).tobytes() for p in params)).hexdigest()[:16],
        "flat": np.concatenate([p.ravel() for p in params]).tolist()[:4096],
    }


def run_processes(processes: int, devices: int, steps: int, timeout: float = 600) -> dict:
    """Starts `processes` processes of `devices` CPU devices each, joined by
    `jax.distributed` on localhost, and one process of one device for reference;
    returns each one's report. Every process is ended on a failure or timeout."""
    with socket.socket() as free:  # a port the OS chose for the coordinator
        free.bind(("localhost", 0))
        port = free.getsockname()[1]

    folder = Path(tempfile.mkdtemp(prefix="learnjax-processes-"))

    def start(n_devices: int, extra: list[str]) -> subprocess.Popen:
        # Output to files, not pipes: a process blocked on a full pipe that nobody
        # reads yet would stall the collectives of the others.
        env = {**os.environ, "JAX_NUM_CPU_DEVICES": str(n_devices), "JAX_PLATFORMS": "cpu"}
        name = folder / f"process-{len(list(folder.iterdir()))}"
        with open(f"{name}.out", "w") as out, open(f"{name}.err", "w") as err:
            child = subprocess.Popen(
                [sys.executable, "-m", "learnjax.training.scaling_check", "--process-run", "--steps", str(steps), *extra],
                stdout=out,
                stderr=err,
                text=True,
                env=env,
            )
        child.outputs = (Path(f"{name}.out"), Path(f"{name}.err"))
        return child

    def finish(group: list[subprocess.Popen]) -> list[str]:
        try:
            for child in group:
                child.wait(timeout=timeout)
        finally:
            for child in group:
                if child.poll() is None:
                    child.kill()
                    child.wait()
        for child in group:
            if child.returncode:
                err = child.outputs[1].read_text(errors="replace")
                # The first fatal line, not the stack trace below it.
                lines = [line for line in err.splitlines() if line.startswith(("F", "E")) or "Error" in line] or err.splitlines()[-1:]
                raise RuntimeError(f"a process exited with status {child.returncode}: {lines[0][:500] if lines else ''}")
        return [child.outputs[0].read_text() for child in group]

    try:
        # The joined processes first, the reference after them: on a small machine
        # they would otherwise compete for its cores.
        joined = finish(
            [start(devices, ["--coordinator", f"localhost:{port}", "--processes", str(processes), "--process-id", str(i)]) for i in range(processes)]
        )
        outputs = [*joined, *finish([start(1, [])])]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    *parts, single = (json.loads(out.strip().splitlines()[-1]) for out in outputs)
    return {"processes": parts, "single": single}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=8, help="devices (per process, with --processes)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--processes", type=int, default=1, help="processes joined by jax.distributed on localhost")
    parser.add_argument("--process-run", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--coordinator", help=argparse.SUPPRESS)
    parser.add_argument("--process-id", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.process_run:
        print(json.dumps(_process_run(args.steps, args.coordinator, args.processes, args.process_id)))
        return 0
    if args.processes > 1:
        print(json.dumps(run_processes(args.processes, args.devices, args.steps)))
        return 0
    if "jax" in sys.modules:
        raise RuntimeError("run learnjax.training.scaling_check in a fresh process: JAX is already loaded")
    os.environ["JAX_NUM_CPU_DEVICES"] = str(args.devices)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    print(json.dumps(_runs(args.devices, args.steps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
