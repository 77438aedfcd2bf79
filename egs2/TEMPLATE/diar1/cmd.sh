# How the stages run their jobs. Choose the backend with CMD_BACKEND=local|slurm
# (default local). Each *_cmd takes "[--gpu N] [JOB=1:N] LOG command args..."; see
# utils/run_local.sh and utils/run_slurm.sh. Edit the resources below for your cluster.
cmd_backend="${CMD_BACKEND:-local}"
case "${cmd_backend}" in
    local)
        # --tee: training output (progress bars) is shown live as well as logged
        export train_cmd="utils/run_local.sh --tee true"
        export cuda_cmd="utils/run_local.sh --tee true"
        export decode_cmd="utils/run_local.sh"
        ;;
    slurm)
        # partition: $SLURM_PARTITION; more sbatch options: $SLURM_EXTRA_OPTS
        export train_cmd="utils/run_slurm.sh --num_threads 4 --mem 16G"
        export cuda_cmd="utils/run_slurm.sh --num_threads 8 --mem 64G"
        export decode_cmd="utils/run_slurm.sh --num_threads 2 --mem 16G"
        ;;
    *)
        echo "cmd.sh: unknown CMD_BACKEND=${cmd_backend} (local or slurm)" 1>&2
        return 1
        ;;
esac
