"""``python -m irfa_nwb`` (and ``torchrun -m irfa_nwb``): the ``irfa-nwb`` command line."""

from irfa_nwb.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
