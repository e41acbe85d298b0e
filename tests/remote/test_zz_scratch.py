import time
def test_show(new_client, client, remote_host):
    for c, args in [(new_client, ("hosta", "-c", "list")),
                    (new_client, ("hosta", "--accept-new-host-key", "-c", "list")),
                    (new_client, ("hosta", "--authorize", "-c", "list")),
                    (client, ("hosta", "-c", "status web")),
                    (client, ("hostdown", "-c", "status web")),
                    (client, ("hosta", "-c", "list", "--remote-command", "/nope/unitmgr")),
                    (client, ("-c", "list", "hosta", "hostb", "hostdown", "nosuchhost.invalid")),
                    ]:
        t = time.monotonic()
        r = c.unitsh(*args)
        print("\n$ unitsh", *args, f"-> {r.returncode} in {time.monotonic()-t:.2f}s")
        print(r.stdout, end=""); print("STDERR:", r.stderr, end="")
