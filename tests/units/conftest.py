import sys
from pathlib import Path

# The helper modules of this folder (corpus_support, systemd_oracle) import by file name.
sys.path.insert(0, str(Path(__file__).resolve().parent))
