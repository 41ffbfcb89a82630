#!/bin/bash
# Fit IRFA on two nodes with Slurm: one torchrun launcher per node, one process per GPU.
#
#   sbatch examples/slurm_two_nodes.sh SESSION.nwb OUTPUT_DIR
#
# Adapt the #SBATCH lines (partition, account, GPUs per node, time) to your cluster. The
# launchers meet through torchrun's c10d rendezvous on the first node of the allocation;
# training runs as examples/06_torchrun_multi_gpu.py describes (DistributedDataParallel,
# synchronised batch norm, batch_size split across all 2 x GPUS_PER_NODE processes, rank 0
# writes the checkpoint, the model and the results). OUTPUT_DIR must be on a file system
# both nodes see. When the job is requeued (or resubmitted with the same OUTPUT_DIR), it
# continues from the last checkpoint, exactly.
#
#SBATCH --job-name=irfa-two-nodes
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=16
#SBATCH --time=24:00:00
#SBATCH --requeue
#SBATCH --output=irfa-two-nodes-%j.out

set -euo pipefail

SOURCE=${1:?usage: sbatch examples/slurm_two_nodes.sh SESSION.nwb OUTPUT_DIR}
OUTPUT=${2:-irfa_two_nodes}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
PORT=${PORT:-29500}
HEAD_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)

export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}

# one task per node runs torchrun, which starts GPUS_PER_NODE processes there
srun --nodes=2 --ntasks-per-node=1 \
    torchrun \
    --nnodes 2 \
    --nproc-per-node "$GPUS_PER_NODE" \
    --rdzv-backend c10d \
    --rdzv-endpoint "$HEAD_NODE:$PORT" \
    --rdzv-id "$SLURM_JOB_ID" \
    examples/06_torchrun_multi_gpu.py "$SOURCE" "$OUTPUT" --resume

# The same with the command line instead of the script (results file, model next to it):
#   srun --nodes=2 --ntasks-per-node=1 torchrun --nnodes 2 --nproc-per-node "$GPUS_PER_NODE" \
#       --rdzv-backend c10d --rdzv-endpoint "$HEAD_NODE:$PORT" --rdzv-id "$SLURM_JOB_ID" \
#       -m irfa_nwb fit "$SOURCE" "$OUTPUT/results.nwb" \
#       --checkpoint-path "$OUTPUT/checkpoint.safetensors"
# and, to continue after an interruption, add: --resume "$OUTPUT/checkpoint.safetensors"
