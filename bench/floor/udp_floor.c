/* The floor for bench/compare.sh: a UDP "registrar" that does no SIP work.
 *
 * It answers every request with "SIP/2.0 200 OK" and the request's Via, From, To,
 * Call-ID, CSeq and Contact lines copied verbatim (enough for `sipreg bench` to match
 * the answer), from one thread blocked in recvfrom, as a Kamailio UDP child is. What it
 * costs per REGISTER in server CPU is what the kernel and the wake-ups cost: no
 * registrar on this machine can spend less.
 *
 * Build: cc -O2 -o udp_floor udp_floor.c     Run: ./udp_floor PORT (binds 127.0.0.1)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

static int copied(const char *l) {
    static const char *names[] = {"Via:", "v:", "From:", "f:", "To:", "t:", "Call-ID:",
                                  "i:", "CSeq:", "Contact:", "m:"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strncasecmp(l, names[i], strlen(names[i]))) return 1;
    return 0;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 5060;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int buf = 4 << 20;
    setsockopt(s, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a)) {
        perror("udp_floor: bind");
        return 1;
    }
    static char in[65536], out[65536 + 64];
    for (;;) {
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(s, in, sizeof in - 1, 0, (struct sockaddr *)&from, &fl);
        if (n <= 0) continue;
        in[n] = 0;
        if (!strncmp(in, "SIP/2.0 ", 8)) continue; /* a response: nothing to answer */
        int o = sprintf(out, "SIP/2.0 200 OK\r\n");
        char *line = strstr(in, "\r\n");
        while (line && line[2] && line[2] != '\r') {
            char *l = line + 2, *e = strstr(l, "\r\n");
            if (!e) break;
            if (copied(l) && o + (e - l) + 2 < (int)sizeof out - 32) {
                memcpy(out + o, l, e - l + 2);
                o += e - l + 2;
            }
            line = e;
        }
        o += sprintf(out + o, "Content-Length: 0\r\n\r\n");
        sendto(s, out, o, 0, (struct sockaddr *)&from, fl);
    }
}
