# Shared by the bench scripts (sourced).

# The median of the numbers on stdin.
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# A / B to two decimals.
ratio() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }

# The median of A_i / B_i over two lists of times taken in the same rounds ("t1 t2 ...",
# in round order), to two decimals. Each round's pair ran minutes apart at most, so a
# slow spell of the machine divides out; a ratio of two medians keeps it.
paired_ratio() {
  paste <(printf '%s\n' $1) <(printf '%s\n' $2) | awk '{ print $1 / $2 }' | median | xargs printf '%.2f'
}
