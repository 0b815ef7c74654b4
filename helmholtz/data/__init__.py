"""Data: reading arrays from files, and where the shared reference data lives."""

from helmholtz.data.arrays import load_array
from helmholtz.data.images import ImageSet, image_patches, load_digits, load_mnist
from helmholtz.data.recordings import (
    Recording,
    allen_recordings,
    detect_step,
    fetch_allen_sweep,
    load_recording,
)
from helmholtz.data.spikes import LorenzSpikes, SpikeRecording, load_grasshopper, lorenz_spikes
from helmholtz.data.trials import load_speed_trials, load_trials, stocker_simoncelli_subject
from helmholtz.utils import reference_dir

__all__ = ["load_array", "reference_dir"]
__all__ += ["load_trials", "load_speed_trials", "stocker_simoncelli_subject"]
__all__ += ["Recording", "load_recording", "allen_recordings", "fetch_allen_sweep", "detect_step"]
__all__ += ["SpikeRecording", "load_grasshopper", "LorenzSpikes", "lorenz_spikes"]
__all__ += ["ImageSet", "load_digits", "load_mnist", "image_patches"]
