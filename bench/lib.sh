# Shared by the bench scripts (sourced).

# The median of the numbers on stdin.
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# A / B to two decimals.
ratio() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }
