"""The ClusterIP terminating check's upload, as the check reads its result."""

from conformance.test_clusterip_terminating import drained


def test_the_terminating_checks_upload_result_keeps_the_servers_answer_whole():
    """What the ClusterIP terminating check reads from its upload: the server's answer comes last, since a failed
    read answers with a message that has spaces; a cut connection reads as code 000 and no answer."""
    assert drained("200 sent=110592 read=110592\n") == ("200", "110592", "110592")
    assert drained("400 sent=77824 read=read 4096 bytes, then: unexpected EOF\n") == (
        "400",
        "77824",
        "read 4096 bytes, then: unexpected EOF",
    )
    assert drained("000 sent=69632 read=\n") == ("000", "69632", "")
    assert drained("garbage") == ("", "", "garbage")
