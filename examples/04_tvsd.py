"""The paper's data: THINGS Ventral Stream Spiking Dataset (TVSD, monkey N) → IRFA.

Download from G-Node GIN (https://gin.g-node.org/paolo_papale/TVSD, not DANDI) the folder
``monkeyN`` with ``THINGS_MUA_trials.mat`` (tens of GB), ``THINGS_normMUA.mat`` and ``_logs/``
(``things_imgs.mat``, ``1024chns_mapping_20220105.mat``), and the THINGS images
(things-initiative.org). A receptive-field file (``THINGS_RFs.mat``: ``all_centrex``,
``all_centrey``) completes the paper's electrode selection; without it a warning says that
part is skipped.

    python examples/04_tvsd.py MONKEY_FOLDER THINGS_IMAGE_ROOT [THINGS_RFs.mat]
"""

import sys
from pathlib import Path

import irfa_nwb
from irfa_nwb.data.tvsd import convert_tvsd, load_tvsd_trials

if len(sys.argv) < 3:
    sys.exit(__doc__)
monkey, image_root = Path(sys.argv[1]), sys.argv[2]
rf_file = sys.argv[3] if len(sys.argv) > 3 else None

# the IRFA paper's preprocessing from the trials: remapped channels, per-area windows, z-scores
# per electrode and day (train and test separately), test repeats averaged, electrodes with
# reliability > 0.4 (the authors' reliab) and a known RF centre; streamed in 64 MiB blocks
ds = load_tvsd_trials(
    monkey / "THINGS_MUA_trials.mat",
    normmua_file=monkey / "THINGS_normMUA.mat",
    rf_file=rf_file,
    images_file=monkey / "_logs" / "things_imgs.mat",
    image_root=image_root,
    image_size=(64, 64),
    progress=True,
)
train, test = irfa_nwb.split_stimuli(ds)  # the designated 100-image test set
model = irfa_nwb.IRFA(device="auto").fit(train["responses"], train["images"])  # 100 epochs
model.save("tvsd_irfa.safetensors")
results = irfa_nwb.evaluate(model, test, alexnet=True)
# the source is not NWB: no session metadata to copy; the results file still names it, with
# its size and modification time (checksum="auto" skips hashing files over 4 GiB; True forces it)
irfa_nwb.write_results("tvsd_results.nwb", results, source_metadata=False)

# the authors' normalised MUA as a best-practice NWB file (images + presentations + MUA)
convert_tvsd(
    monkey / "THINGS_normMUA.mat",
    "tvsd_monkeyN.nwb",
    images_file=monkey / "_logs" / "things_imgs.mat",
    image_root=image_root,
    age="P7Y",
)
