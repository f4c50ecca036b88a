file(REMOVE_RECURSE
  "libscconv.a"
)
