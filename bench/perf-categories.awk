# Sorts perf samples of Gantry into where the time goes: system calls (by
# kind), the kernel otherwise, Gantry's own code, the tokio runtime, the
# allocator, sqlparser. Input: `perf script -F comm,tid,time,ip,sym,dso` of a
# recording made with call graphs (--call-graph dwarf); one sample is a
# header line followed by one frame per line, leaf first.
#
#   perf script -i perf.data -F comm,tid,time,ip,sym,dso | awk -f bench/perf-categories.awk

function kernel_frame(line) { return line ~ /\(\[kernel\.kallsyms\]\)$/ || line ~ /\(\[unknown\]\)$/ && line ~ /^[ \t]*ffffffff/ }

# The symbol of a frame line: "<addr> <symbol...> (<dso>)".
function frame_sym(line,    s) {
    s = line
    sub(/^[ \t]*[0-9a-f]+ /, "", s)
    sub(/ \([^()]*\)$/, "", s)
    return s
}

# The category of a libc system-call wrapper (or of user code a kernel
# sample interrupted: a page fault or an interrupt, not a system call).
function classify_syscall(sym) {
    if (sym ~ /epoll_wait/) return "syscall: epoll_wait (waiting for I/O)"
    if (sym ~ /^(__libc_send|__send|send|__libc_write|__write|write|writev|__writev|sendto|sendmsg)/) return "syscall: send/write (socket writes)"
    if (sym ~ /^(__libc_recv|__recv|recv|__libc_read|__read|read|readv|recvfrom|recvmsg)/) return "syscall: recv/read (socket reads)"
    if (sym ~ /^(syscall|__GI_syscall|futex|__futex|__lll_lock|pthread_cond)/) return "syscall: futex (waking/parking worker threads)"
    if (sym ~ /^(accept|__libc_accept|accept4|connect|__libc_connect|socket|close|__close|__libc_close|shutdown)/) return "syscall: accept/connect/close"
    if (sym ~ /^(sched_yield|nanosleep|clock_nanosleep|mmap|munmap|madvise|mprotect|brk|__brk)/) return "syscall: memory/sleep (" sym ")"
    return "kernel: fault or interrupt in user code"
}

function classify_user(n,    i, s) {
    for (i = 1; i <= n; i++) {
        s = frame_sym(frames[i])
        if (s ~ /^(__libc_send|__send|__libc_recv|__recv|epoll_wait|syscall|__GI___pthread|__pthread)/) return "libc system-call wrappers"
        if (s ~ /^(malloc|free|realloc|calloc|__GI___libc_malloc|__GI___libc_free|__libc_malloc|__libc_free|__libc_realloc|_int_malloc|_int_free|_int_realloc|cfree|malloc_consolidate|unlink_chunk|tcache)/ \
            || s ~ /^(alloc::alloc|__rust_alloc|__rust_dealloc|__rust_realloc|<alloc::alloc::Global)/) return "allocator (malloc/free)"
        if (s ~ /^(__memmove|__memcpy|memcpy|memmove|__memset|memset|__memcmp|memcmp|__memchr|memchr|__strlen)/) return "libc mem*/str* (copies, compares)"
        if (s ~ /^(gantry::router|<gantry::router)/) return "gantry: router/classifier"
        if (s ~ /^(gantry::protocol|<gantry::protocol)/) return "gantry: protocol (framing, response scanner)"
        if (s ~ /^(gantry::|<gantry::)/) return "gantry: sessions, forwarding, pools"
        if (s ~ /sqlparser/) return "sqlparser"
        if (s ~ /^(tokio::|<tokio::|mio::|<mio::|parking_lot|<parking_lot)/) return "tokio runtime (scheduler, I/O driver, timers)"
        if (s ~ /crossbeam|arc_swap/) return "gantry: sessions, forwarding, pools"
        if (s ~ /^(__vdso|clock_gettime|__GI___clock_gettime)/) return "clock reads (vdso)"
        if (s ~ /^(exp_inline|asuint64|__exp|exp|log|__log|pow|__pow)/) return "libm (exp/log)"
        # Generic library code inlined into its caller: classify by the caller.
        if (s ~ /^(core::|<core::|alloc::|<alloc::|std::|<std::|bytes::|<bytes::|\[unknown\]|<&|<\[|<[a-z0-9_]+ as |<[a-z0-9_]+>::)/) continue
        return "other user code (" s ")"
    }
    return "other user code"
}

function flush(    i, cat, sym) {
    if (n == 0) return
    total++
    if (kernel_frame(frames[1])) {
        cat = ""
        kstack = ""
        for (i = 1; i <= n; i++) {
            if (!kernel_frame(frames[i])) { cat = classify_syscall(frame_sym(frames[i])); break }
            kstack = kstack " " frame_sym(frames[i])
        }
        if (cat == "") cat = "kernel: interrupts/softirq, no user frame"
        if (cat ~ /^syscall/) {
            # What the kernel was doing inside the call.
            if (kstack ~ / (net_rx_action|process_backlog|__netif_receive_skb)/) sub_ = "loopback delivery to the peer socket + waking its reader (softirq)"
            else if (kstack ~ / (__schedule|schedule)( |$)/) sub_ = "context switch (scheduled out / back in)"
            else if (kstack ~ / (tcp_sendmsg|tcp_recvmsg|tcp_write_xmit|tcp_cleanup_rbuf|skb_copy|_copy_to_iter|_copy_from_iter)/) sub_ = "TCP send/receive path, copies"
            else if (kstack ~ / (ep_poll|do_epoll_wait|ep_send_events)/) sub_ = "epoll bookkeeping"
            else if (kstack ~ / (futex|try_to_wake_up)/) sub_ = "futex, wake-ups"
            else sub_ = "other kernel"
            subcount[sub_]++
            subtotal++
        }
    } else {
        cat = classify_user(n)
    }
    count[cat]++
    n = 0
}

/^[^ \t]/ { flush(); next }        # sample header
/^[ \t]*$/ { flush(); next }
{ frames[++n] = $0 }
END {
    flush()
    if (total == 0) { print "no samples"; exit }
    printf "| where | share of Gantry's CPU samples |\n|---|---:|\n"
    # Largest first (selection sort: a dozen categories).
    # Categories under 0.1% are lumped together.
    m = 0; small = 0
    for (c in count) {
        if (count[c] * 1000 < total) { small += count[c]; continue }
        m++; name[m] = c; val[m] = count[c]
    }
    for (i = 1; i <= m; i++) {
        best = i
        for (j = i + 1; j <= m; j++) if (val[j] > val[best]) best = j
        t = name[i]; name[i] = name[best]; name[best] = t
        t = val[i]; val[i] = val[best]; val[best] = t
        printf "| %s | %.1f%% |\n", name[i], val[i] * 100 / total
    }
    if (small > 0) printf "| everything else (under 0.1%% each) | %.1f%% |\n", small * 100 / total
    printf "\n%d samples.\n", total
    if (subtotal == 0) exit
    printf "\nInside the system calls (%.1f%% of all samples):\n\n| kernel work | share of all samples |\n|---|---:|\n", subtotal * 100 / total
    m = 0
    for (c in subcount) { m++; name[m] = c; val[m] = subcount[c] }
    for (i = 1; i <= m; i++) {
        best = i
        for (j = i + 1; j <= m; j++) if (val[j] > val[best]) best = j
        t = name[i]; name[i] = name[best]; name[best] = t
        t = val[i]; val[i] = val[best]; val[best] = t
        printf "| %s | %.1f%% |\n", name[i], val[i] * 100 / total
    }
}
