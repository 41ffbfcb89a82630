# The top-level API of irfa_nwb, loaded lazily (lazy_loader.attach_stub reads this file):
# `import irfa_nwb` imports neither torch nor pynwb; each name is imported on first use.
from ._version import __version__ as __version__
from .analysis.compare import compare as compare
from .analysis.compare import comparison_table as comparison_table
from .analysis.evaluate import evaluate as evaluate
from .data import average_repeats as average_repeats
from .data import list_stimulus_tables as list_stimulus_tables
from .data import load_dataset as load_dataset
from .data import open_nwb as open_nwb
from .data import select_units as select_units
from .data import split_half_reliability as split_half_reliability
from .data import split_stimuli as split_stimuli
from .data import stack_presentations as stack_presentations
from .data import verify_nwb as verify_nwb
from .data import zscore_sessions as zscore_sessions
from .estimator import IRFA as IRFA
from .estimator import RidgeReconstruction as RidgeReconstruction
from .estimator import load_model as load_model
from .results import read_results as read_results
from .results import write_results as write_results
from .simulation import simulate_recording as simulate_recording
from .simulation import write_simulated_recording as write_simulated_recording
