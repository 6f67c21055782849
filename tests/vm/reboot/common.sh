# Shared by the two boots of the reboot scenario.
JOB_RAND="--name=rnd --filename=/dev/mapper/pc --direct=1 --ioengine=psync --rw=randwrite --bs=4k --size=64M --offset=0 --randseed=1234 --verify=crc32c --verify_fatal=1"
JOB_SEQ="--name=seq --filename=/dev/mapper/pc --direct=1 --ioengine=psync --rw=write --bs=1M --size=128M --offset=1G --verify=crc32c --verify_fatal=1"
# Sequential writes cached too: the machine dies with clean and dirty blocks.
PC_ARGS="max_dirty_age 600000 sequential_cutoff 0"
