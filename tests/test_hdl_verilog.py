"""Golden text of the direct Verilog emitter (no simulator): operand extension and truncation, output
stages (rounding shift, ReLU, saturation on either side), output bus assembly and pipeline registers.

Every expected line below was checked by hand against the node's range (the comment after it)."""

from __future__ import annotations

from jpq_hw.arith import GraphBuilder, Term, place_registers
from jpq_hw.hdl.verilog import emit_verilog, literal, saturation_tests
from jpq_hw.ir import IntFormat


def module_text(graph, every: int, b_in: int, b_out: int) -> str:
    """The emitted module from ``module`` to ``endmodule`` (the header comments name the version)."""
    text = emit_verilog(graph, place_registers(graph, every), top="dut", b_in=b_in, b_out=b_out)
    return text[text.index("module dut"):text.index("endmodule") + len("endmodule")]


def unsigned_graph():
    """u8 inputs a, c: a + c, (a + c) - a (read truncated), 7a = (a << 3) - a, and two output stages."""
    b = GraphBuilder()
    a, c = b.input(0, 255), b.input(0, 255)
    s = b.add(a, c)  # [0, 510]: 9 bits
    d = b.add(s, a, 0, 0, True)  # = c, [0, 255]: reads s in 8 bits
    e = b.add(a, a, 3, 0, True)  # 7a
    out0 = b.requant(Term(d), 0, 0, False, IntFormat(8, False), 0)  # passes d through
    out1 = b.requant(Term(e, 1, True), 100, 3, True, IntFormat(4, True), 0)  # relu((100 - 14a) >> 3), <= 7
    return b.build([out0, out1], ["L"])


def signed_graph():
    """s4 inputs p, q: p + 4q, then clamp((p + 4q - 3) >> 1) to s4 (saturates both ways)."""
    b = GraphBuilder()
    p, q = b.input(-8, 7), b.input(-8, 7)
    m = b.add(p, q, 0, 2)
    return b.build([b.requant(Term(m), -3, 1, False, IntFormat(4, True), 0)], ["L"])


def test_unsigned_operands_truncation_relu_and_overflow():
    assert module_text(unsigned_graph(), 0, 8, 9) == """\
module dut (
    input  wire [15:0] x,
    output wire [17:0] y
);

    // inputs
    wire [7:0] n0 = x[0 +: 8];
    wire [7:0] n1 = x[8 +: 8];

    // layer 0: L
    (* keep *) wire [8:0] n2 = {1'b0, n0} + {1'b0, n1};  // [0, 510]
    (* keep *) wire [7:0] n3 = n2[7:0] - n0;  // [0, 255]
    (* keep *) wire [10:0] n4 = {n0, 3'b0} - {{3{1'b0}}, n0};  // [0, 1785]
    wire [7:0] n5_acc = n3;  // [0, 255]
    wire [7:0] n5_t = n5_acc[7:0];
    (* keep *) wire [7:0] n5 = n5_t[7:0];  // [0, 255]
    wire [12:0] n6_acc = ~({{1'b0, n4}, 1'b0} - 13'h65);  // [-3470, 100]
    wire [9:0] n6_t = n6_acc[12:3];
    (* keep *) wire [2:0] n6 = n6_t[9] ? 3'h0 : |n6_t[8:3] ? 3'h7 : n6_t[2:0];  // [0, 7]

    assign y = { {{6{1'b0}}, n6}, {1'b0, n5} };
endmodule"""


def test_signed_operands_offset_and_saturation_both_ways():
    assert module_text(signed_graph(), 0, 4, 6) == """\
module dut (
    input  wire [7:0] x,
    output wire [5:0] y
);

    // inputs
    wire [3:0] n0 = x[0 +: 4];
    wire [3:0] n1 = x[4 +: 4];

    // layer 0: L
    (* keep *) wire [6:0] n2 = {{3{n0[3]}}, n0} + {{n1[3], n1}, 2'b0};  // [-40, 35]
    wire [6:0] n3_acc = n2 + 7'h7d;  // [-43, 32]
    wire [5:0] n3_t = n3_acc[6:1];
    (* keep *) wire [3:0] n3 = (!n3_t[5] && |n3_t[4:3]) ? 4'h7 : (n3_t[5] && ~&n3_t[4:3]) ? 4'h8 : n3_t[3:0];  // [-8, 7]

    assign y = { {{2{n3[3]}}, n3} };
endmodule"""


def test_pipeline_registers_and_valid_chain():
    text = module_text(signed_graph(), 1, 4, 6)
    assert """\
    input  wire clk,
    input  wire in_valid,
    output wire out_valid,
    input  wire [7:0] x,""" in text
    assert "    wire [6:0] n3_acc = n2_d1 + 7'h7d;  // [-43, 32]\n" in text  # stage 1 reads the registered n2
    assert """\
    reg [1:0] valid_sr;
    initial valid_sr = 2'd0;  // no reset in the interface: the FPGA's power-up value
    always @(posedge clk) valid_sr <= {valid_sr[0:0], in_valid};
    assign out_valid = valid_sr[1];
    reg [6:0] n2_d1;
    reg [3:0] n3_d1;
    always @(posedge clk) begin
        n2_d1 <= n2;
        n3_d1 <= n3;
    end

    assign y = { {{2{n3_d1[3]}}, n3_d1} };""" in text


def test_saturation_tests_and_literals():
    fmt = IntFormat(4, True)  # [-8, 7]
    assert saturation_tests("t", 6, True, -22, 16, fmt) == ("(!t[5] && |t[4:3])", "(t[5] && ~&t[4:3])")
    assert saturation_tests("t", 5, True, -16, 15, fmt) == ("(!t[4] && t[3])", "(t[4] && !t[3])")  # one bit each
    assert saturation_tests("t", 6, True, -8, 7, fmt) == (None, None)  # the range fits: no test
    assert saturation_tests("t", 6, False, 0, 40, IntFormat(3, False)) == ("|t[5:3]", None)
    assert saturation_tests("t", 6, True, -5, 3, IntFormat(3, False)) == (None, "t[5]")  # below 0: the sign
    assert literal(-3, 7) == "7'h7d" and literal(100, 13) == "13'h64" and literal(0, 1) == "1'h0"
