"""Stand-in for a raw dataset that is not on disk: say where it is expected, then fail."""

import sys

with open(snakemake.log[0], "w") as log:
    print(snakemake.params.message, file=log)
sys.exit(snakemake.params.message)
