"""python -m edgeticket.device.native: build (or find) the host kernel library and print its path."""

from . import host_library

if __name__ == "__main__":
    print(host_library())
