# Where the corpora are (or are downloaded to by local/data.sh). Environment variables win.
# AISHELL4: the directory holding train_L/, train_M/, train_S/ and test/ (OpenSLR 111).
AISHELL4=${AISHELL4:-downloads/aishell4}
