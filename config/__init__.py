"""Data shipped with mieruka: example site configs, register maps and emission-factor sets.

This package holds no code but the paths below; files are read where they are used.
"""
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
EXAMPLES_DIR = CONFIG_DIR / "examples"
REGISTERS_DIR = CONFIG_DIR / "registers"
FACTORS_DIR = CONFIG_DIR / "factors"
