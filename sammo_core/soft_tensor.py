"""Soft prompt values: :class:`SoftTensor`, an immutable ``n_tokens x hidden`` float32 matrix
held as bytes, so programs hold, hash, compare and serialize it without torch; read from and
written to safetensors files. The component that places one in a program is
:class:`sammo_core.soft.SoftPrompt`; runners and requests need only this module (it imports
no component), so the program model and the runners do not import each other through it.

>>> tensor = SoftTensor.from_values([[0.5, -1.0], [2.0, 0.0]])
>>> tensor.shape, tensor.digest[:12], tensor.values()
((2, 2), '02cb90c8c165', [[0.5, -1.0], [2.0, 0.0]])
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyglove as pg

from sammo_core.errors import ConfigError, SerializationError

if TYPE_CHECKING:
    import torch

__all__ = ["HF_RUNNER_HINT", "MAX_SOFT_BYTES", "SoftTensor", "require_soft", "soft_placeholder"]

_EXTRA_HINT = "pip install -e '.[soft]'"
#: What an error says to do when a runner cannot take a soft prompt.
HF_RUNNER_HINT = "--model hf:gemma3 (Python: build_runner('hf:gemma3'))"
_FLOAT = struct.Struct("<f")
_SAFETENSORS_NAME = "soft_prompt"


def require_soft() -> None:
    """Import the ``soft`` extra's packages, or raise :class:`ConfigError` naming the extra.

    >>> require_soft()  # doctest: +SKIP
    """
    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"soft prompts need the [soft] extra: {_EXTRA_HINT} ({exc})") from exc


def _digest(shape: tuple[int, int], data: bytes) -> str:
    return hashlib.sha256(f"float32-le {shape[0]}x{shape[1]}\n".encode() + data).hexdigest()


class SoftTensor(pg.JSONConvertible):  # type: ignore[misc]  # pyglove ships no type stubs
    """An immutable ``n_tokens x hidden`` float32 matrix: the values of a soft prompt.

    ``data`` holds the values as little-endian float32, row-major; ``digest`` is the sha256 over
    the shape and the data, and equality and hashing go by it. In program JSON written by
    :func:`sammo_core.serialization.save` a tensor is a reference to a safetensors file by its
    digest; :func:`sammo_core.serialization.dumps` writes the bytes inline (base64). Never pickle.

    >>> a = SoftTensor.from_values([[1.0, 2.0]])
    >>> a == SoftTensor((1, 2), a.data), a == SoftTensor.from_values([[1.0, 2.5]])
    (True, False)
    >>> SoftTensor((2, 2), b"1234")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: a 2x2 float32 tensor needs 16 bytes of data; got 4
    """

    #: The stable name saved files give it (see :func:`sammo_core.components.stable_type_name`).
    __serialization_key__ = "sammo_core.SoftTensor"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A subclass is saved under its own module path, never under the stable name above
        # (pyglove would register it there, in place of this class).
        cls.__serialization_key__ = f"{cls.__module__}.{cls.__qualname__}"
        super().__init_subclass__(**kwargs)

    __slots__ = ("_data", "_digest", "_shape")

    def __init__(self, shape: tuple[int, int], data: bytes) -> None:
        if len(shape) != 2 or any(not isinstance(d, int) or d < 1 for d in shape):
            raise ConfigError(f"a soft tensor is n_tokens x hidden, both >= 1; got {shape!r}")
        n, hidden = shape
        if len(data) != 4 * n * hidden:
            raise ConfigError(
                f"a {n}x{hidden} float32 tensor needs {4 * n * hidden} bytes of data; "
                f"got {len(data)}"
            )
        self._shape = (n, hidden)
        self._data = bytes(data)
        self._digest = _digest(self._shape, self._data)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_tokens, hidden)``."""
        return self._shape

    @property
    def data(self) -> bytes:
        """The values: little-endian float32, row-major."""
        return self._data

    @property
    def digest(self) -> str:
        """The sha256 (hex) over the shape and the data."""
        return self._digest

    def content_hash(self) -> str:
        """What program hashes use for this tensor (its digest)."""
        return self._digest

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SoftTensor) and other._digest == self._digest

    def __hash__(self) -> int:
        return hash(self._digest)

    def __repr__(self) -> str:
        return f"SoftTensor({self._shape[0]}x{self._shape[1]}, sha={self._digest[:8]})"

    @classmethod
    def from_values(cls, rows: Sequence[Sequence[float]]) -> SoftTensor:
        """A tensor from nested Python numbers (rows of equal length)."""
        widths = {len(row) for row in rows}
        if len(widths) != 1:
            raise ConfigError(f"soft tensor rows must be non-empty and of one length; got {widths}")
        data = b"".join(_FLOAT.pack(float(x)) for row in rows for x in row)
        return cls((len(rows), widths.pop()), data)

    def values(self) -> list[list[float]]:
        """The values as nested Python floats."""
        n, hidden = self._shape
        flat = [v for (v,) in _FLOAT.iter_unpack(self._data)]
        return [flat[i * hidden : (i + 1) * hidden] for i in range(n)]

    @classmethod
    def from_torch(cls, tensor: torch.Tensor) -> SoftTensor:
        """A copy of a 2-D torch tensor's values (detached, as float32 on the CPU)."""
        if tensor.dim() != 2:
            raise ConfigError(
                f"a soft tensor is n_tokens x hidden; got a tensor of shape {tuple(tensor.shape)}"
            )
        import torch

        values = tensor.detach().to(device="cpu", dtype=torch.float32).contiguous()
        data = values.numpy().astype("<f4", copy=False).tobytes()
        return cls((int(values.shape[0]), int(values.shape[1])), data)

    def to_torch(self) -> torch.Tensor:
        """A new float32 CPU torch tensor holding the values (needs the ``soft`` extra)."""
        require_soft()
        import numpy
        import torch

        # "<f4" reads the bytes as little-endian on any machine; astype gives native order.
        values = numpy.frombuffer(self._data, dtype="<f4").astype(numpy.float32)
        return torch.from_numpy(values.reshape(self._shape))

    def to_safetensors(self) -> bytes:
        """The tensor as a safetensors file (one float32 tensor named ``soft_prompt``).

        Written directly (the format is a length, a JSON header and the raw bytes), so saving
        needs neither torch nor the safetensors package; both read it.

        >>> SoftTensor.from_values([[1.0]]).to_safetensors()[8:44]
        b'{"__metadata__":{"sha256":"f90035238'
        """
        header = {
            "__metadata__": {"sha256": self._digest},
            _SAFETENSORS_NAME: {
                "dtype": "F32",
                "shape": list(self._shape),
                "data_offsets": [0, len(self._data)],
            },
        }
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)  # the reference writer aligns the data to 8 bytes
        return struct.pack("<Q", len(text)) + text + self._data

    @classmethod
    def from_safetensors(cls, blob: bytes, where: str = "soft tensor file") -> SoftTensor:
        """Read :meth:`to_safetensors` output (any safetensors file with one 2-D F32 tensor)."""
        try:
            (size,) = struct.unpack_from("<Q", blob)
            shape, data_bytes = _safetensors_header(blob[8 : 8 + size], size, len(blob) - 8)
            data = blob[8 + size :]
            if data_bytes != len(data):
                raise ValueError(
                    f"data offsets [0, {data_bytes}] do not cover the {len(data)} bytes"
                )
            return cls(shape, data)
        except (ValueError, struct.error, ConfigError) as exc:
            raise SerializationError(
                f"{where} is not a soft tensor safetensors file: {exc}"
            ) from exc

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> SoftTensor:
        """Read a safetensors file of one 2-D F32 tensor, checking the sizes its header declares
        against the file's before reading the data (a huge or padded file is never read whole).

        >>> import tempfile, pathlib
        >>> file = pathlib.Path(tempfile.mkdtemp()) / "t.safetensors"
        >>> _ = file.write_bytes(SoftTensor.from_values([[1.0, 2.0]]).to_safetensors())
        >>> SoftTensor.from_file(file).shape
        (1, 2)
        """
        where = str(path)
        try:
            with open(path, "rb") as f:
                total = os.fstat(f.fileno()).st_size
                (size,) = struct.unpack("<Q", f.read(8))
                shape, data_bytes = _safetensors_header(f.read(min(size, 1 << 20)), size, total - 8)
                if 8 + size + data_bytes != total:
                    raise ValueError(
                        f"the file is {total:,} bytes, but its header declares "
                        f"{8 + size + data_bytes:,} (a {shape[0]}x{shape[1]} tensor)"
                    )
                return cls(shape, f.read(data_bytes))
        except OSError as exc:
            raise SerializationError(f"cannot read {where}: {exc.strerror or exc}") from exc
        except (ValueError, struct.error, ConfigError) as exc:
            raise SerializationError(
                f"{where} is not a soft tensor safetensors file: {exc}"
            ) from exc

    # -- JSON (pyglove's hooks; see sammo_core.serialization) ------------------------------

    def to_json(self, **kwargs: Any) -> dict[str, Any]:
        """A reference by digest; the bytes go to ``soft_tensors`` if given, else inline."""
        json: dict[str, Any] = {
            "_type": _TYPE_NAME,
            "shape": list(self._shape),
            "sha256": self._digest,
        }
        store = kwargs.get("soft_tensors")
        if store is None:
            json["data"] = base64.b64encode(self._data).decode("ascii")
        else:
            store[self._digest] = self
        return json

    @classmethod
    def from_json(cls, json_value: Any, **kwargs: Any) -> SoftTensor:
        """Rebuild from :meth:`to_json` (inline, or ``soft_tensors[sha256]``); digest checked."""
        if not isinstance(json_value, dict):
            raise SerializationError(f"a soft tensor must be a JSON object; got {json_value!r}")
        try:
            shape = (int(json_value["shape"][0]), int(json_value["shape"][1]))
            digest = str(json_value["sha256"])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise SerializationError(
                f"a soft tensor needs 'shape' [n, hidden] and 'sha256'; got {json_value!r}"
            ) from exc
        if "data" in json_value:
            try:
                tensor = cls(shape, base64.b64decode(json_value["data"], validate=True))
            except (ValueError, ConfigError) as exc:
                message = f"soft tensor {digest[:8]}: bad inline data: {exc}"
                raise SerializationError(message) from exc
        else:
            store = kwargs.get("soft_tensors") or {}
            if digest not in store:
                raise SerializationError(
                    f"soft tensor {digest[:8]} ({shape[0]}x{shape[1]}) is stored beside the "
                    "program file, not in it: load the file with sammo_core.serialization.load"
                    "(path), which reads <program>.soft/<sha256>.safetensors"
                )
            tensor = store[digest]
        if tensor.digest != digest or tensor.shape != shape:
            raise SerializationError(
                f"soft tensor {digest[:8]} does not match its digest (the data was changed or "
                f"damaged: it hashes to {tensor.digest[:8]}, shape {tensor.shape}); restore the "
                "file or save the program again"
            )
        return tensor


_TYPE_NAME = SoftTensor.__serialization_key__  # "sammo_core.SoftTensor", where files name it


#: The largest soft tensor read: 64 M float32 values (far beyond any prompt of any model).
MAX_SOFT_BYTES = 256 << 20


def _safetensors_header(head: bytes, size: int, room: int) -> tuple[tuple[int, int], int]:
    """The shape and data size a safetensors header of ``size`` bytes declares for its one
    2-D F32 tensor; ``room`` is what the file holds after the length (ValueError if wrong)."""
    if size > min(room, 1 << 20):
        raise ValueError(f"header length {size} exceeds the file")
    try:
        header = json.loads(head)
    except (UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"the header is not JSON ({type(exc).__name__})") from None
    if not isinstance(header, dict):
        raise ValueError(f"the header is a JSON {type(header).__name__}, not an object")
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    if len(tensors) != 1:
        raise ValueError(f"expected one tensor, found {sorted(tensors)[:5]}")
    ((name, spec),) = tensors.items()
    if not isinstance(spec, dict):
        raise ValueError(f"tensor {name!r} is described by {spec!r}, not an object")
    dtype, shape, offsets = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
    if (
        dtype != "F32"
        or not isinstance(shape, list)
        or len(shape) != 2
        or not all(type(n) is int and 0 < n < 2**31 for n in shape)
    ):
        raise ValueError(f"expected a 2-D F32 tensor, found {str(dtype)[:20]} {str(shape)[:40]}")
    data_bytes = shape[0] * shape[1] * 4
    if data_bytes > MAX_SOFT_BYTES:
        raise ValueError(
            f"a {shape[0]}x{shape[1]} tensor ({data_bytes:,} bytes) is larger than any soft "
            f"prompt ({MAX_SOFT_BYTES:,} bytes at most)"
        )
    if offsets != [0, data_bytes]:
        raise ValueError(f"data offsets {str(offsets)[:40]} do not cover the {data_bytes} bytes")
    return (shape[0], shape[1]), data_bytes


# Files written before the stable name called it by its module path: they still load.
pg.JSONConvertible.register("sammo_core.soft.SoftTensor", SoftTensor, override_existing=True)
pg.JSONConvertible.register("sammo_core.soft_tensor.SoftTensor", SoftTensor, override_existing=True)


def soft_placeholder(tensor: SoftTensor) -> str:
    """The text that stands for a soft prompt holding ``tensor`` in a rendered prompt (runners
    find the tensor's place by it).

    >>> soft_placeholder(SoftTensor.from_values([[1.0, 2.0]]))
    '<soft-prompt n=1 sha=c5609928>'
    """
    return f"<soft-prompt n={tensor.shape[0]} sha={tensor.digest[:8]}>"
