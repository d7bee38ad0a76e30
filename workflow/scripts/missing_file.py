"""Stand-in for an input that has to be supplied by hand: say where it is expected, then fail."""

import sys

with open(snakemake.log[0], "w") as log:
    print(snakemake.params.message, file=log)
sys.exit(snakemake.params.message)
