"""The out-of-context top of ``jpq-hw synth --device``: a lowered network measured alone.

A network's buses are far wider than any package's pins (the digits example takes 320 input bits),
so the bare module cannot be placed with its ports on pins. The harness registers every port and
leaves only a few pins to the placer:

- every input bit comes from a shift register fed by one pin (``din``), so no input is constant and
  every path into the network starts at a flip-flop;
- every output bit is registered, and the registers are folded into one pin by an XOR (``dout``), so
  no output logic can be removed and every path out of the network ends at a flip-flop;
- the handshake inputs of a pipelined or stream design (``in_valid``, ``rst``, ``s_valid``,
  ``m_ready``) come from pins through a register, its handshake outputs go to pins through one.

So nextpnr times register -> network -> register, as the network runs inside a board top. The
harness's own cells (one flip-flop per port bit, an XOR tree of about a third of a LUT4 per output
bit) are counted with the network's: ``harness_cells`` says how many flip-flops they are.
"""

from __future__ import annotations

from ..design_folder import Interface, StreamInterface

MODULE = "jpq_ooc"  # the harness module's name


def harness_verilog(iface: "Interface | StreamInterface") -> str:
    """Verilog of the harness module :data:`MODULE` around ``iface``'s top (contract.md sections 2, 3)."""
    if isinstance(iface, StreamInterface):
        n_in = iface.input.channels * iface.input.bits
        n_out = iface.output.channels * iface.output.bits
        ports = ["input wire rst_pin", "input wire s_valid_pin", "input wire m_ready_pin", "output reg s_ready_pin",
                 "output reg m_valid_pin"]
        regs = ["reg rst_q, s_valid_q, m_ready_q;", "wire s_ready, m_valid;"]
        dut = (f"{iface.top} dut (.clk(clk), .rst(rst_q), .s_valid(s_valid_q), .s_ready(s_ready), .s_data(xq), "
               f".m_valid(m_valid), .m_ready(m_ready_q), .m_data(y));")
        clocked = ["rst_q <= rst_pin;", "s_valid_q <= s_valid_pin;", "m_ready_q <= m_ready_pin;",
                   "s_ready_pin <= s_ready;", "m_valid_pin <= m_valid;"]
    else:
        n_in, n_out = iface.inputs.width, iface.outputs.width
        if iface.pipelined:
            ports = ["input wire in_valid_pin", "output reg out_valid_pin"]
            regs = ["reg in_valid_q;", "wire out_valid;"]
            dut = (f"{iface.top} dut (.clk(clk), .in_valid(in_valid_q), .out_valid(out_valid), .x(xq), .y(y));")
            clocked = ["in_valid_q <= in_valid_pin;", "out_valid_pin <= out_valid;"]
        else:
            ports, regs, dut, clocked = [], [], f"{iface.top} dut (.x(xq), .y(y));", []
    shift = f"xq <= {{xq[{n_in - 2}:0], din}};" if n_in > 1 else "xq <= din;"
    lines = ["`default_nettype none",
             f"module {MODULE} (" + ", ".join(["input wire clk", "input wire din", "output reg dout", *ports]) + ");",
             f"    reg [{n_in - 1}:0] xq;", f"    reg [{n_out - 1}:0] yq;", f"    wire [{n_out - 1}:0] y;",
             *(f"    {r}" for r in regs), f"    {dut}", "    always @(posedge clk) begin",
             f"        {shift}", "        yq <= y;", "        dout <= ^yq;", *(f"        {c}" for c in clocked),
             "    end", "endmodule", "`default_nettype wire", ""]
    return "\n".join(lines)


def harness_flip_flops(iface: "Interface | StreamInterface") -> int:
    """Flip-flops the harness adds (shift register, output register, the handshake registers, dout)."""
    if isinstance(iface, StreamInterface):
        return iface.input.channels * iface.input.bits + iface.output.channels * iface.output.bits + 6
    return iface.inputs.width + iface.outputs.width + 1 + (2 if iface.pipelined else 0)
