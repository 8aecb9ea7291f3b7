# Sourced by the benchmark scripts: `need COMMAND [PACKAGE]` installs PACKAGE (default COMMAND)
# from Debian's packages when COMMAND is missing, with sudo unless running as root.
need() {
  local command=$1 package=${2:-$1}
  command -v "$command" >/dev/null && return 0
  echo "installing $package (Debian package)" >&2
  local sudo=sudo
  [ "$(id -u)" = 0 ] && sudo=""
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "$package" >/dev/null
}
