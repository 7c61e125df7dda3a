// Test bench of a stream design (contract.md section 3), driven in Verilog so that a simulation runs
// at the simulator's speed; cocotb (jpq_hw.sim.cocotb_bench) gives it a clock, waits for done and
// reads the figures below. The design is `JPQ_TOP; frames and expected output beats come from the
// hex files named by +jpq_frames=PATH and +jpq_expect=PATH (one beat per line, written from
// tb/vectors.json by design_folder.write_stream_hex).
//
// 1. Reset, part of a frame at full rate with random back-pressure, and a reset again: the next beat
//    must start a frame.
// 2. Every frame with random bubbles on the input (a beat offered with probability 0.7, then held
//    until taken) and random back-pressure on the output (ready with probability 0.6).
// 3. Every frame again at full rate from an idle design: latency (first pixel accepted to first
//    beat out) and the most cycles between the first pixels of two frames are measured.
// Each phase ends DRAIN cycles after its last expected beat. Every output beat is compared with the
// next expected one; a beat beyond the expected ones, and m_valid or m_data changing while a beat
// waits, are errors too.
`timescale 1ns/1ps
`default_nettype none
module jpq_stream_tb #(
    parameter IN_W = 8, parameter OUT_W = 8,
    parameter N_IN = 1, parameter N_OUT = 1,   // beats of all frames, in and out
    parameter BEATS_IN = 1,                    // beats of one input frame
    parameter DRAIN = 100
) ();
    reg clk = 1'b0;  // driven by cocotb
    reg rst = 1'b1;
    reg s_valid = 1'b0;
    reg [IN_W-1:0] s_data = {IN_W{1'b0}};
    reg m_ready = 1'b0;
    wire s_ready, m_valid;
    wire [OUT_W-1:0] m_data;
    `JPQ_TOP dut (.clk(clk), .rst(rst), .s_valid(s_valid), .s_ready(s_ready), .s_data(s_data),
                  .m_valid(m_valid), .m_ready(m_ready), .m_data(m_data));

    reg [IN_W-1:0] frames [0:N_IN-1];
    reg [OUT_W-1:0] want [0:N_OUT-1];
    reg [8*1024-1:0] path;
    initial begin
        if (!$value$plusargs("jpq_frames=%s", path)) $fatal(1, "no +jpq_frames=PATH");
        $readmemh(path, frames);
        if (!$value$plusargs("jpq_expect=%s", path)) $fatal(1, "no +jpq_expect=PATH");
        $readmemh(path, want);
    end

    // results, read by cocotb at the end
    reg done = 1'b0;
    reg [31:0] errors = 0;
    reg [31:0] first_error = 0;      // 1: wrong beat, 2: extra beat, 3: output changed while waiting
    reg [31:0] first_phase = 0, first_beat = 0;
    reg [OUT_W-1:0] first_got = {OUT_W{1'b0}};
    reg [31:0] beats_out = 0;        // beats taken in phases 2 and 3
    reg [31:0] latency = 0, max_gap = 0, cycles = 0;

    reg [2:0] phase = 3'd0;
    reg [31:0] cycle = 0, sent = 0, got = 0, idle = 0, count = 0;
    reg [31:0] first_in = 0, last_start = 0;
    reg seen_out = 1'b0;
    reg [31:0] rnd = 32'h2545f491;
    reg holding = 1'b0;
    reg [OUT_W-1:0] held = {OUT_W{1'b0}};
    wire take_in = s_valid && s_ready;
    wire take_out = m_valid && m_ready;
    wire [31:0] x1 = rnd ^ (rnd << 13);  // xorshift32
    wire [31:0] x2 = x1 ^ (x1 >> 17);
    wire [31:0] next_rnd = x2 ^ (x2 << 5);
    wire [31:0] sent_next = sent + (take_in ? 32'd1 : 32'd0);

    task automatic fail(input [31:0] kind, input [31:0] beat);
        begin
            if (errors == 0) begin
                first_error <= kind;
                first_phase <= {29'd0, phase};
                first_beat <= beat;
                first_got <= m_data;
            end
            errors <= errors + 1;
        end
    endtask

    always @(posedge clk) begin
        cycle <= cycle + 1;
        rnd <= next_rnd;
        // the output rules, in the measured phases
        if (phase >= 3'd2 && phase <= 3'd3 && !rst) begin
            if (holding && (!m_valid || m_data != held)) fail(3, got);
            holding <= m_valid && !m_ready;
            held <= m_data;
            if (take_out) begin
                if (got >= N_OUT) fail(2, got);
                else if (m_data != want[got]) fail(1, got);
                got <= got + 1;
                beats_out <= beats_out + 1;
                if (phase == 3'd3 && !seen_out) begin
                    seen_out <= 1'b1;
                    latency <= cycle - first_in;
                end
            end
        end
        case (phase)
            3'd0: begin  // reset, then part of a frame, then reset again
                count <= count + 1;
                if (count == 2) rst <= 1'b0;
                if (count >= 2 && !rst) begin
                    m_ready <= next_rnd[0];
                    if (sent_next < BEATS_IN / 2 + 1) begin
                        s_valid <= 1'b1;
                        s_data <= frames[sent_next];
                    end else begin
                        s_valid <= 1'b0;
                        rst <= 1'b1;
                        phase <= 3'd1;
                    end
                    sent <= sent_next;
                end
            end
            3'd1: begin  // one cycle of reset
                rst <= 1'b0;
                m_ready <= 1'b0;
                sent <= 0;
                got <= 0;
                idle <= 0;
                holding <= 1'b0;
                phase <= 3'd2;
            end
            3'd2, 3'd3: begin  // every frame: with random stalls, then at full rate
                if (take_in && phase == 3'd3) begin
                    if (sent == 0) first_in <= cycle;
                    if (sent % BEATS_IN == 0) begin
                        if (sent != 0 && cycle - last_start > max_gap) max_gap <= cycle - last_start;
                        last_start <= cycle;
                    end
                end
                if (s_valid && !take_in) begin
                    // an offered beat stays until it is taken
                end else if (sent_next < N_IN && (phase == 3'd3 || next_rnd[9:0] < 10'd717)) begin
                    s_valid <= 1'b1;
                    s_data <= frames[sent_next];
                end else begin
                    s_valid <= 1'b0;
                    s_data <= next_rnd[IN_W-1:0];  // bubbles carry random bits
                end
                m_ready <= phase == 3'd3 || next_rnd[19:10] < 10'd614;
                sent <= sent_next;
                if (got + (take_out ? 1 : 0) >= N_OUT && sent_next >= N_IN) begin
                    idle <= idle + 1;
                    if (idle == DRAIN) begin
                        if (phase == 3'd2) begin
                            phase <= 3'd3;
                            sent <= 0;
                            got <= 0;
                            idle <= 0;
                            s_valid <= 1'b0;
                        end else begin
                            phase <= 3'd4;
                            cycles <= cycle;
                        end
                    end
                end
            end
            default: done <= 1'b1;
        endcase
    end
endmodule
`default_nettype wire
