"""Fit IRFA on an Allen Visual Coding – Neuropixels session (DANDI:000021), natural scenes.

The 118 natural-scene images are not inside the NWB file. Get them once (AllenSDK:
``BrainObservatoryCache().get_ophys_experiment_data(...).get_stimulus_template(
'natural_scenes')``) and save them as 0.tiff ... 117.tiff in a folder.

    python examples/03_dandi_allen_natural_scenes.py IMAGE_FOLDER [DANDI_ADDRESS]

Needs network access (the file is streamed), ``pip install "irfa-nwb[dandi]"``, the
pretrained VGG19 weights of the perceptual loss (downloaded on first use) and, for the
published 100 epochs, a GPU.
"""

import sys

import irfa_nwb

if len(sys.argv) < 2:
    sys.exit(__doc__)
images = sys.argv[1]
address = (
    sys.argv[2] if len(sys.argv) > 2
    else "dandi://000021/sub-703279277/sub-703279277_ses-719161530.nwb"
)

print(irfa_nwb.list_stimulus_tables(address))  # what could serve as presentations
ds = irfa_nwb.load_dataset(
    address,
    presentations="natural_scenes_presentations",  # `frame` column, -1 = blank (dropped)
    images=images,
    window=(0.03, 0.18),
    quality="allen",  # AllenSDK default unit-quality filters
    cache_dir="dandi_cache",  # keep streamed blocks on disk
    backend="fsspec",
)
# responses: stimulus_id x repeat x unit (about 50 repeats of each of the 118 scenes)
ds = irfa_nwb.select_units(ds, min_reliability=0.3)  # split-half reliability over repeats
ds = irfa_nwb.zscore_sessions(ds)
train, test = irfa_nwb.split_stimuli(ds, test_size=0.15, random_state=0)  # no split in file
model = irfa_nwb.IRFA(max_iter=200, random_state=0, verbose=1).fit(train.responses, train.images)
model.save("allen_natural_scenes_irfa.safetensors", overwrite=True)
results = irfa_nwb.evaluate(model, test)
print(results.attrs["mean_pixel_r"], results.attrs["identification_accuracy"])
irfa_nwb.write_results("allen_natural_scenes_results.nwb", results, overwrite=True)
