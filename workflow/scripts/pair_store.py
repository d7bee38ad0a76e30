"""Pack the SID (short, long) training pairs for paired-real training (rule pair_store)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.data.pairs import build_pair_store
from expodiff.data.sid import sid_train_pairs

build_pair_store(sid_train_pairs(snakemake.params.root), snakemake.params.out_dir)
