"""What a training run writes as it goes: ``log.csv``, ``validation.csv`` and TensorBoard.

``log.csv`` has one row per optimiser step (:data:`LOG_FIELDS`: loss, learning rate,
gradient norm, samples/s), flushed after each, so a crashed run keeps every step it took;
``validation.csv`` one row per validation. Values are written with ``repr`` so that a
resumed run can be compared with an uninterrupted one number for number. A resume keeps
the rows up to the checkpoint's step and drops the later ones (they were not
checkpointed and will be run again). Where TensorBoard is installed the same numbers go
to ``output/tensorboard/`` too. Only rank 0 writes.
"""
from __future__ import annotations

import csv
from pathlib import Path

LOG_NAME = "log.csv"
LOG_FIELDS = ("step", "loss", "lr", "grad_norm", "samples_per_s")
VALIDATION_NAME = "validation.csv"


def read_rows(path: Path, up_to: int) -> list[dict]:
    """Rows of an earlier run's CSV log up to step ``up_to`` (later rows were not checkpointed)."""
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return [row for row in csv.DictReader(handle) if int(row["step"]) <= up_to]


def write_rows(path: Path, rows: list[dict]) -> None:
    """Rewrite a small CSV whose columns are the union of the rows' keys, in order of appearance."""
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        writer.writeheader()
        writer.writerows(rows)


def tensorboard(output: Path):
    """A TensorBoard writer into ``output/tensorboard`` where TensorBoard is installed, else ``None``."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # optional: log.csv holds the same numbers
    except ImportError:
        return None
    return SummaryWriter(str(output / "tensorboard"))


class TrainingLog:
    """The run's logs (rank 0 writes, other ranks hold a log that writes nothing).

    Args:
        output: the run's folder.
        step: the step the run starts from (0, or the resumed checkpoint's).
        writes: whether this process writes (rank 0).
    """

    def __init__(self, output: Path, step: int, writes: bool = True):
        self.output, self.writes = Path(output), writes
        self.validation_rows = read_rows(self.output / VALIDATION_NAME, step) if step else []
        self._file = self._writer = self._board = None
        if writes:
            rows = read_rows(self.output / LOG_NAME, step) if step else []
            self._file = open(self.output / LOG_NAME, "w", newline="")
            self._writer = csv.DictWriter(self._file, LOG_FIELDS)
            self._writer.writeheader()
            self._writer.writerows(rows)
            self._file.flush()
            self._board = tensorboard(self.output)

    def step(self, step: int, loss: float, lr: float, grad_norm: float, samples_per_s: float) -> None:
        """One optimiser step's row of ``log.csv``."""
        if not self.writes:
            return
        self._writer.writerow({"step": step, "loss": repr(loss), "lr": repr(lr), "grad_norm": repr(grad_norm),
                               "samples_per_s": f"{samples_per_s:.3f}"})
        self._file.flush()
        if self._board is not None:
            for name, value in (("loss", loss), ("lr", lr), ("grad_norm", grad_norm)):
                self._board.add_scalar(f"train/{name}", value, step)

    def validated(self, step: int) -> bool:
        """Whether ``validation.csv`` already holds ``step``'s row."""
        return any(int(row["step"]) == step for row in self.validation_rows)

    def validation(self, step: int, metrics: dict[str, float]) -> None:
        """One validation's row of ``validation.csv``."""
        if not self.writes:
            return
        self.validation_rows.append({"step": step, **{k: repr(float(v)) for k, v in metrics.items()}})
        write_rows(self.output / VALIDATION_NAME, self.validation_rows)
        if self._board is not None:
            for name, value in metrics.items():
                self._board.add_scalar(f"validation/{name}", float(value), step)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._board is not None:
            self._board.close()
