"""The paper's data: THINGS Ventral Stream Spiking Dataset (TVSD, monkey N) → NWB → IRFA.

Download from G-Node GIN (not DANDI): ``THINGS_normMUA.mat``, ``_logs/things_imgs.mat`` and the
THINGS image folder.

    python examples/04_tvsd.py THINGS_normMUA.mat things_imgs.mat THINGS_IMAGE_ROOT
"""

import sys

import irfa_nwb

if len(sys.argv) < 4:
    sys.exit(__doc__)
mua, image_paths, image_root = sys.argv[1:4]

# a best-practice NWB file (Images + IndexSeries + processed MUA + electrodes with area/array)
nwb_path = irfa_nwb.convert_tvsd(
    mua, "tvsd_monkeyN.nwb", images_file=image_paths, image_root=image_root, age="P7Y"
)
ds = irfa_nwb.load_dataset(nwb_path)
ds = irfa_nwb.select_units(ds, min_reliability=0.4)  # the paper's electrode selection
train, test = irfa_nwb.train_test_split(ds)  # the designated 100-image test set
model = irfa_nwb.IRFA(device="auto").fit(*irfa_nwb.to_training_pair(train))  # 100 epochs
model.save("tvsd_irfa.safetensors")
irfa_nwb.write_results("tvsd_results.nwb", model, test, source=nwb_path, layer_correlations=True)
