"""What tools/analysis/ and tools/count_params.py share: parameter counts,
FLOPs with attention counted, the attention a forward computed, noise
robustness, and the benchmark harness (:mod:`.benchmark`, torch alone)."""
