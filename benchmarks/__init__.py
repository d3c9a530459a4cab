"""Load tests of the served model (`make bench`), outside the served package: they need wrk, psutil and the
training side's bundle loader, none of which a serving image installs."""
