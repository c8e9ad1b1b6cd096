#!/usr/bin/env python3
"""A broken OpenAI-compatible server on loopback, for the fault tests (tests/cli_*.sh).

    python3 tests/cli/fake_openai.py PORT_FILE hang ACCEPTED_FILE   completions never answered
    python3 tests/cli/fake_openai.py PORT_FILE drop                 completions' connections closed

It writes its port to PORT_FILE once it listens. GET (the model list a job asks for before it
loads anything) is answered 200 with an empty list; a completion request is held open for ever
(hang, one "accepted" line per request in ACCEPTED_FILE) or its connection is closed at once
(drop). It exits after 300 s without a connection.
"""
import socket
import sys

port_file, mode = sys.argv[1], sys.argv[2]
accepted_file = sys.argv[3] if mode == "hang" else None
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(16)
with open(port_file, "w") as out:
    out.write(str(server.getsockname()[1]))
held = []
server.settimeout(300)
while True:
    try:
        client, _ = server.accept()
    except socket.timeout:
        break
    client.settimeout(5)
    try:
        head = client.recv(65536)
    except socket.timeout:
        head = b""
    if head.startswith(b"GET"):
        client.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n'
                       b'Connection: close\r\n\r\n{"data":[]}')
        client.close()
    elif mode == "hang":
        held.append(client)
        with open(accepted_file, "a") as out:
            out.write("accepted\n")
    else:
        client.close()
