"""Which devices an evaluation may run on, and which one it gets: GPU discovery, `--gpus`, least-loaded slots.

A slot is one timing domain: one physical GPU (or, on CPU, one named CPU slot, for tests and many-core hosts).
Each slot has its own device lock (timing stays serial per GPU, never across GPUs) and, on CUDA, pins the
evaluation workers it runs to its GPU through CUDA_VISIBLE_DEVICES, so inside the worker it is always cuda:0.
The assignment only balances load: it never changes what a candidate's verdict is.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceSlot:
    index: int  # position in the run's slot list
    device: str  # what the worker uses: "cpu", "cuda:0" (pinned) or "cuda:N" (unpinned, the old single path)
    visible_devices: str | None  # CUDA_VISIBLE_DEVICES of the worker (the physical GPU id); None: inherited
    lock_name: str  # the device lock's file stem: one per physical GPU

    @property
    def is_cpu(self) -> bool:
        return self.device == "cpu"


def _lock_stem(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def pinned_slot(index: int, gpu_id: str) -> DeviceSlot:
    """A slot whose workers see only `gpu_id` (a CUDA_VISIBLE_DEVICES entry: an index or a GPU UUID)."""
    return DeviceSlot(index, "cuda:0", gpu_id, f"cuda_{_lock_stem(gpu_id)}")


def cpu_slots(names: Sequence[str]) -> list[DeviceSlot]:
    """CPU slots named by `names` (each its own timing lock); one unnamed slot keeps the plain "cpu" lock."""
    if len(names) == 1 and names[0] == "cpu":
        return [DeviceSlot(0, "cpu", None, "cpu")]
    return [DeviceSlot(i, "cpu", None, f"cpu_{_lock_stem(n)}") for i, n in enumerate(names)]


def default_slot(device: str) -> DeviceSlot:
    """What `Evaluator(device)` used before slots existed: no pinning, the lock named after the device."""
    return DeviceSlot(0, device, None, _lock_stem(device))


def visible_gpu_ids() -> list[str]:
    """This process's GPUs as CUDA_VISIBLE_DEVICES entries (the same rule as export-pairs); [] without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return []
    count = torch.cuda.device_count()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [v.strip() for v in visible.split(",") if v.strip()] if visible else []
    return ids[:count] or [str(i) for i in range(count)]


def parse_gpus(spec: str | None, visible: Sequence[str]) -> list[str]:
    """`--gpus all|N|i,j` against the visible ids: all of them, the first N, or those at indices i, j."""
    if not visible:
        raise ValueError("no CUDA GPU is visible here; use --device cpu")
    text = (spec or "all").strip()
    if text == "all":
        return list(visible)
    if text.isdigit():
        count = int(text)
        if not 1 <= count <= len(visible):
            raise ValueError(f"--gpus {text}: between 1 and {len(visible)} GPU(s) are visible")
        return list(visible[:count])
    if "," in text:
        try:
            indices = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise ValueError(f"--gpus {text!r}: give all, a count, or comma-separated GPU indices") from None
        bad = [i for i in indices if not 0 <= i < len(visible)]
        if bad or not indices or len(set(indices)) != len(indices):
            raise ValueError(f"--gpus {text!r}: indices must be distinct, within 0..{len(visible) - 1}")
        return [visible[i] for i in indices]
    raise ValueError(f"--gpus {text!r}: give all, a count (2), or comma-separated GPU indices (0,1)")


def resolve_slots(device: str, spec: str | None, visible: Sequence[str] | None = None) -> list[DeviceSlot]:
    """The slots of a run from `--device` and `--gpus` (`visible`: the GPU ids, discovered when None).

    cpu: one slot, or N named CPU slots (`--gpus N` or `--gpus a,b`); cuda: one pinned slot per chosen GPU;
    cuda:N: that GPU alone (`--gpus` must then be left out)."""
    if device == "cpu":
        text = (spec or "all").strip()
        if text == "all":
            return cpu_slots(["cpu"])
        if text.isdigit() and int(text) >= 1:
            return cpu_slots([str(i) for i in range(int(text))])
        names = [n.strip() for n in text.split(",") if n.strip()]
        if len(names) < 2 or len(set(names)) != len(names):
            raise ValueError(f"--gpus {text!r} with --device cpu: give a count or distinct slot names")
        return cpu_slots(names)
    if not (device == "cuda" or re.fullmatch(r"cuda:\d+", device)):
        raise ValueError(f"--device must be cpu, cuda or cuda:N, not {device!r}")
    ids = list(visible) if visible is not None else visible_gpu_ids()
    if device != "cuda":
        if spec is not None:
            raise ValueError(
                f"--device {device} names one GPU; use --device cuda with --gpus to pick several"
            )
        index = int(device.split(":")[1])
        if index >= len(ids):
            raise ValueError(f"{device} does not exist: {len(ids)} CUDA device(s) visible")
        return [pinned_slot(0, ids[index])]
    return [pinned_slot(i, gpu) for i, gpu in enumerate(parse_gpus(spec, ids))]


class SlotAssigner:
    """Hands each evaluation the slot with the fewest evaluations in flight (ties: the lowest index)."""

    def __init__(self, slots: Sequence[DeviceSlot]):
        if not slots:
            raise ValueError("at least one device slot is needed")
        self.slots = list(slots)
        self._busy = [0] * len(self.slots)
        self.served = [0] * len(self.slots)  # evaluations each slot has taken (reports, tests)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def lease(self) -> Iterator[DeviceSlot]:
        with self._lock:
            index = min(range(len(self.slots)), key=lambda i: (self._busy[i], i))
            self._busy[index] += 1
            self.served[index] += 1
        try:
            yield self.slots[index]
        finally:
            with self._lock:
                self._busy[index] -= 1
