import gc

from jpq_hw.gc_pause import paused_gc


def test_pauses_nest_and_restore_the_collector():
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner pause does not switch it back on
    assert gc.isenabled()


def test_an_exception_restores_the_collector_too():
    try:
        with paused_gc():
            raise ValueError
    except ValueError:
        pass
    assert gc.isenabled()
