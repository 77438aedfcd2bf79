"""Small shared utilities (RTTM, data dirs, audio, CLI); cheap to import (no torch, no espnet2)."""
