"""The same training steps on many devices: JAX's SPMD sharding, no hand-written all-reduce.

A device mesh names the devices along one axis, `data`. Each batch is split
along that axis, every device computing the step on its rows; what the devices
must share (the sum of the gradients, the mean of the loss) XLA adds to the
compiled program itself: `jax.jit` of the unchanged step, given arrays laid out
over the mesh, compiles one program for all the devices (GSPMD). Two layouts of
the model's state:

- data parallel: parameters and optimizer moments replicated on every device;
- FSDP (fully sharded data parallel): each parameter and moment split along
  the same `data` axis, so each device holds 1/N of the state; XLA gathers a
  layer's weights when the step needs them.

The mesh's axis is of type `Auto` (set explicitly: since JAX 0.9 `jax.make_mesh`
defaults to `Explicit`, which makes shardings part of every array's type and
every operation on sharded arrays state its output sharding). With `Auto`, XLA
propagates the layout from the inputs through the unchanged step; the loops
put the state back on its layout after each call, so every call runs the
program compiled first.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding

P = jax.P
DATA = "data"


# --8<-- [start:mesh]
def data_mesh(devices: int | None = None) -> Mesh:
    """A one-axis mesh (`data`) over the first `devices` devices (default: all),
    across processes too when `jax.distributed` is initialised."""
    available = jax.devices()
    n = len(available) if devices is None else devices
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(available):
        raise ValueError(f"devices must be between 1 and the {len(available)} "
                         f"visible, got {devices!r}")
    return jax.make_mesh((n,), (DATA,), axis_types=(AxisType.Auto,),
                         devices=available[:n])
# --8<-- [end:mesh]


# --8<-- [start:layouts]
def fsdp_spec(shape: tuple[int, ...], n_devices: int) -> jax.sharding.PartitionSpec:
    """Split an array along its largest axis that the devices divide evenly;
    replicate it when none does (scalars, small biases)."""
    divisible = [axis for axis, size in enumerate(shape)
                 if size % n_devices == 0 and size >= n_devices]
    if not divisible or n_devices == 1:
        return P()
    axis = max(divisible, key=lambda a: shape[a])
    return P(*(DATA if a == axis else None for a in range(len(shape))))


def state_shardings(state, mesh: Mesh, fsdp: bool = False):
    """The layout of a (model, optimizer) state on the mesh: replicated, or FSDP."""
    n = mesh.shape[DATA]
    return jax.tree.map(
        lambda x: NamedSharding(mesh, fsdp_spec(np.shape(x), n) if fsdp else P()),
        state,
    )
# --8<-- [end:layouts]


def check_batch(batch_size: int, mesh: Mesh) -> None:
    n = mesh.shape[DATA]
    if batch_size % n:
        raise ValueError(f"batch_size={batch_size} does not split evenly over {n} devices; use a multiple of {n}")


def batch_sharding(mesh: Mesh, ndim: int) -> NamedSharding:
    """Stacks of batches (S, B, ...): the batch axis split over `data`."""
    return NamedSharding(mesh, P(None, DATA, *([None] * (ndim - 2))))


def place(tree, shardings):
    """`tree`'s arrays laid out by `shardings`. Across several processes each
    holds the whole state (the same seed gives every process the same initial
    state), and supplies the shards of its own devices."""
    def put(x, sharding):
        if sharding.is_fully_addressable:
            return jax.device_put(x, sharding)
        whole = np.asarray(x)
        return jax.make_array_from_callback(whole.shape, sharding, lambda index: whole[index])
    return jax.tree.map(put, tree, shardings)


# --8<-- [start:place_batches]
def place_batches(stack: np.ndarray, mesh: Mesh) -> jax.Array:
    """A stack of batches (S, B, ...) split over the mesh's `data` axis. Across
    several processes, each passes only its own rows: the block of the batch
    that its devices compute (`jax.make_array_from_process_local_data`), as a
    data loader on each host would."""
    sharding = batch_sharding(mesh, stack.ndim)
    if sharding.is_fully_addressable:
        return jax.device_put(stack, sharding)
    n, index = jax.process_count(), jax.process_index()
    rows = stack.shape[1] // n
    return jax.make_array_from_process_local_data(
        sharding, stack[:, index * rows : (index + 1) * rows], stack.shape)
# --8<-- [end:place_batches]


def fetch(x) -> np.ndarray:
    """A replicated array's value on this process (works across processes too)."""
    if getattr(x, "is_fully_addressable", True):
        return np.asarray(x)
    return np.asarray(x.addressable_data(0))
