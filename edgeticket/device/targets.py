"""Target profiles: one TOML per board (TVM-style names; the compile host is separate from the target).
Loading checks every field and names the bad one.

Where they are looked up: the folders of $EDGETICKET_TARGETS (os.pathsep-separated) first, then the ones shipped
with the package (edgeticket/targets/); a user's file of the same name replaces the shipped one. `--target`
also takes a path to a .toml file."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EdgeTicketError

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]


PACKAGED = Path(__file__).resolve().parent.parent / "targets"

# Every field a target file may hold: a key not listed here is an error naming the nearest valid one (a misspelt
# `cflag` would silently drop the flags). The value: the types a field may have where nothing else checks it (the
# `source` notes, compute.simd/gpu, what tvm_build reads), None where load_target_file reads and checks it. The
# tables of tvm.target/tvm.host hold TVM's own target keys (TVM checks them).
FIELDS: dict[str, tuple[type, ...] | None] = {
    "name": None, "description": None, "arch": None,
    "memory.ram_bytes": None, "memory.model_budget_bytes": None, "memory.source": (str,),
    "compute.cores": None, "compute.freq_ghz": None, "compute.peak_gflops": None, "compute.mem_gbytes_per_s": None,
    "compute.simd": (str,), "compute.gpu": (str,), "compute.source": (str,),
    "onnx.max_opset": None, "onnx.source": (str,),
    "onnxruntime.providers": None, "onnxruntime.source": (str,),
    "tensorrt.version": None, "tensorrt.source": (str,),
    "tvm.target": None, "tvm.host": (str, dict), "tvm.cross_compiler": (str,), "tvm.gpu_target": (str,),
    "tvm.gpu_supported": (bool,), "tvm.source": (str,),
    "native.cc": None, "native.cflags": None, "native.source": (str,),
}
TABLES = sorted({f.split(".")[0] for f in FIELDS if "." in f})

# onnxruntime's execution provider names (onnxruntime.get_all_providers() of 1.32, and those of older releases a
# board may run: ROCm, ACL, ArmNN, TVM, SNPE).
ORT_PROVIDERS = (
    "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider", "OpenVINOExecutionProvider",
    "CoreMLExecutionProvider", "DmlExecutionProvider", "ROCMExecutionProvider", "MIGraphXExecutionProvider",
    "QNNExecutionProvider", "XnnpackExecutionProvider", "NnapiExecutionProvider", "ACLExecutionProvider",
    "ArmNNExecutionProvider", "CANNExecutionProvider", "AzureExecutionProvider", "VitisAIExecutionProvider",
    "WebGpuExecutionProvider", "JsExecutionProvider", "RknpuExecutionProvider", "TvmExecutionProvider",
    "SNPEExecutionProvider", "DnnlExecutionProvider", "VSINPUExecutionProvider", "WebNNExecutionProvider",
)


def _closest(word: str, candidates, cutoff: float = 0.6) -> str | None:
    """The candidate nearest to `word` (difflib, ignoring case: 'CudaExecutionProvider' is CUDA's), else None."""
    lower = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(word.lower(), list(lower), n=1, cutoff=cutoff)
    return lower[close[0]] if close else None


def _did_you_mean(dotted: str) -> str:
    """'; did you mean 'native.cflags'?' for an unknown field: the closest key of its own table (difflib), else a
    field of that name in another table, else the table's valid keys."""
    table, _, leaf = dotted.rpartition(".")
    siblings = {f.rpartition(".")[2]: f for f in FIELDS if f.rpartition(".")[0] == table}
    if not table:
        siblings.update({t: t for t in TABLES})
    close = _closest(leaf, siblings)
    if close:
        return f"; did you mean '{siblings[close]}'?"
    elsewhere = [f for f in FIELDS if _closest(leaf, [f.rpartition(".")[2]], cutoff=0.8)]
    if elsewhere:
        return f"; did you mean '{elsewhere[0]}'?"
    return f"; valid: {', '.join(siblings.values())}"


def check_fields(raw: dict, path: Path) -> None:
    """Every key of the file is a field of FIELDS (a table of TABLES holding its fields), of the kind FIELDS says;
    an unknown key names the nearest valid one."""
    kind_names = {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "a table",
                  bool: "true or false"}
    for key, value in raw.items():
        if key in TABLES:
            if not isinstance(value, dict):
                raise EdgeTicketError(f"{path}: field '{key}' must be a table ([{key}]) (got {value!r})")
            items = [(f"{key}.{k}", v) for k, v in value.items()]
        else:
            items = [(key, value)]
        for dotted, v in items:
            if dotted not in FIELDS:
                raise EdgeTicketError(f"{path}: unknown field '{dotted}'{_did_you_mean(dotted)}")
            kinds = FIELDS[dotted]
            if kinds is not None and (not isinstance(v, kinds) or (isinstance(v, bool) and bool not in kinds)):
                want = " or ".join(kind_names[k] for k in kinds)
                raise EdgeTicketError(f"{path}: field '{dotted}' must be {want} (got {v!r})")


def check_providers(providers: list, path: Path) -> None:
    """At least one provider, each one of onnxruntime's names (ORT_PROVIDERS); an unknown one names the nearest."""
    if not providers:
        raise EdgeTicketError(f"{path}: field 'onnxruntime.providers' is empty; name at least CPUExecutionProvider")
    for p in providers:
        if p not in ORT_PROVIDERS:
            close = _closest(str(p), ORT_PROVIDERS)
            hint = f"did you mean '{close}'?" if close else f"valid: {', '.join(ORT_PROVIDERS)}"
            raise EdgeTicketError(f"{path}: unknown execution provider {p!r} in 'onnxruntime.providers'; {hint}")


def search_path(directory: Path | None = None) -> list[Path]:
    """Where target files are looked up, first hit wins: `directory` alone if given, else $EDGETICKET_TARGETS's
    folders, then the packaged ones."""
    if directory is not None:
        return [Path(directory)]
    env = os.environ.get("EDGETICKET_TARGETS", "")
    return [Path(p) for p in env.split(os.pathsep) if p] + [PACKAGED]


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    arch: str
    ram_bytes: int
    model_budget_bytes: int
    cores: int
    freq_ghz: float
    peak_gflops: float
    mem_gbytes_per_s: float
    max_opset: int
    providers: tuple[str, ...]
    tvm_target: Any
    tvm_host: Any
    cross_compiler: str | None
    native_cc: str | None
    native_cflags: tuple[str, ...]
    tensorrt_version: str | None  # the TensorRT whose ONNX parser runs this board's graphs ([tensorrt] version)
    path: Path
    raw: dict = field(repr=False, compare=False, default_factory=dict)

    def summary(self) -> dict:
        return {"name": self.name, "description": self.description, "arch": self.arch,
                "ram_bytes": self.ram_bytes, "model_budget_bytes": self.model_budget_bytes, "cores": self.cores,
                "peak_gflops": self.peak_gflops, "mem_gbytes_per_s": self.mem_gbytes_per_s,
                "max_opset": self.max_opset, "providers": list(self.providers), "tvm_target": self.tvm_target}


def _get(d: dict, dotted: str, kind, path: Path, positive: bool = False, optional: bool = False):
    cur: Any = d
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            if optional:
                return None
            raise EdgeTicketError(f"{path}: missing field '{dotted}'")
        cur = cur[part]
    ok = isinstance(cur, kind) and not isinstance(cur, bool) if kind is not bool else isinstance(cur, bool)
    if kind is float and isinstance(cur, int) and not isinstance(cur, bool):
        cur, ok = float(cur), True
    if not ok or (positive and cur <= 0):
        want = {int: "a positive integer" if positive else "an integer", float: "a positive number",
                str: "a string", list: "a list", bool: "true or false"}.get(kind, str(kind))
        raise EdgeTicketError(f"{path}: field '{dotted}' must be {want} (got {cur!r})")
    return cur


def load_target_file(path: Path) -> Target:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise EdgeTicketError(f"{path}: not valid TOML ({e})") from None
    check_fields(raw, path)
    name = _get(raw, "name", str, path)
    if name != path.stem:
        raise EdgeTicketError(f"{path}: field 'name' is '{name}' but the file is named {path.name}; make them agree")
    ram = _get(raw, "memory.ram_bytes", int, path, positive=True)
    budget = _get(raw, "memory.model_budget_bytes", int, path, positive=True)
    if budget > ram:
        raise EdgeTicketError(f"{path}: field 'memory.model_budget_bytes' ({budget}) exceeds memory.ram_bytes ({ram})")
    providers = _get(raw, "onnxruntime.providers", list, path)
    check_providers(providers, path)
    tvm_target = (raw.get("tvm") or {}).get("target")
    if tvm_target is not None and not isinstance(tvm_target, (str, dict)):
        raise EdgeTicketError(f"{path}: field 'tvm.target' must be a TVM tag string or a table (got {tvm_target!r})")
    return Target(
        name=name, description=_get(raw, "description", str, path), arch=_get(raw, "arch", str, path),
        ram_bytes=ram, model_budget_bytes=budget, cores=_get(raw, "compute.cores", int, path, positive=True),
        freq_ghz=_get(raw, "compute.freq_ghz", float, path, positive=True),
        peak_gflops=_get(raw, "compute.peak_gflops", float, path, positive=True),
        mem_gbytes_per_s=_get(raw, "compute.mem_gbytes_per_s", float, path, positive=True),
        max_opset=_get(raw, "onnx.max_opset", int, path, positive=True), providers=tuple(providers),
        tvm_target=tvm_target, tvm_host=(raw.get("tvm") or {}).get("host"),
        cross_compiler=(raw.get("tvm") or {}).get("cross_compiler"),
        native_cc=_get(raw, "native.cc", str, path, optional=True),
        native_cflags=tuple(_get(raw, "native.cflags", list, path, optional=True) or ()),
        tensorrt_version=_get(raw, "tensorrt.version", str, path, optional=True), path=path, raw=raw)


def available(directory: Path | None = None) -> list[str]:
    return sorted({p.stem for d in search_path(directory) for p in d.glob("*.toml")})


def load_target(name: str, directory: Path | None = None) -> Target:
    p = Path(name)
    if p.suffix == ".toml":
        if not p.is_file():
            raise EdgeTicketError(f"target file not found: {p}")
        return load_target_file(p)
    for d in search_path(directory):
        path = d / f"{name}.toml"
        if path.is_file():
            return load_target_file(path)
    where = ", ".join(str(d) for d in search_path(directory))
    raise EdgeTicketError(f"unknown target '{name}'; valid: {', '.join(available(directory)) or '(none)'} "
                          f"(looked in {where}); or give a .toml file")


def load_all(directory: Path | None = None) -> list[Target]:
    return [load_target(n, directory) for n in available(directory)]
