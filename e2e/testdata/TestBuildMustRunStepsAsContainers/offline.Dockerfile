FROM busybox
RUN if ip route | grep -q default; then exit 1; fi; ip link | grep -c "^[0-9]" > /links
