"""Profile stage: runs ON the device with numpy + onnxruntime only (no torch). Latency, peak memory, spike rates,
SynOps; calibration microbenchmarks; predictions for targets without the device."""
