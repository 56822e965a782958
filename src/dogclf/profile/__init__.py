"""Profiling: step timing, system metrics, torch.profiler window, bottleneck rules and report."""
