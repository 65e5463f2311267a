"""The machine a run measured: the ratios are against floors of the same run, but a reader
still needs to know what ran them."""

import os
import platform
from importlib.metadata import version
from typing import Dict


def machine() -> Dict[str, str]:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return {
        "CPU": _cpu_model(),
        "cores": str(os.cpu_count()),
        "load average at start": load,
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "dlt": version("dlt"),
        "duckdb": version("duckdb"),
        "requests": version("requests"),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
